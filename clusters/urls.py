"""Routes of clusters: home, booking, leases, the staff fleet, /metrics; pages and API."""

from django.urls import path

from clusters.api import capacity as capacity_api
from clusters.api import lease_requests as lease_requests_api
from clusters.api import leases as leases_api
from clusters.api import nodes as nodes_api
from clusters.api import offerings as offerings_api
from clusters.api import regions as regions_api
from clusters.api import telemetry as telemetry_api
from clusters.views import booking, capacity, fleet, home, lease_requests, leases, metrics

urlpatterns = [
    path("", home.home, name="home"),
    # No trailing slash, as Prometheus scrapers expect.
    path("metrics", metrics.metrics, name="metrics"),
    path("book/", booking.booking, name="booking"),
    path("book/check/", booking.booking_check, name="booking-check"),
    path("leases/", leases.lease_list, name="lease-list"),
    path("leases/<str:lease_id>/", leases.lease_detail, name="lease-detail"),
    path("leases/<str:lease_id>/live/", leases.lease_live, name="lease-live"),
    path("leases/<str:lease_id>/extend/", leases.lease_extend_view, name="lease-extend"),
    path("leases/<str:lease_id>/release/", leases.lease_release_view, name="lease-release"),
    path("leases/<str:lease_id>/replace/", leases.lease_replace_view, name="lease-replace"),
    path("requests/", lease_requests.lease_request_list, name="lease-request-list"),
    path("requests/<str:request_id>/", lease_requests.lease_request_detail, name="lease-request-detail"),
    path("requests/<str:request_id>/live/", lease_requests.lease_request_live, name="lease-request-live"),
    path(
        "requests/<str:request_id>/cancel/",
        lease_requests.lease_request_cancel_view,
        name="lease-request-cancel",
    ),
    path("staff/fleet/", fleet.fleet, name="fleet"),
    path("staff/fleet/nodes/<str:node_id>/", fleet.fleet_node, name="fleet-node"),
    path("staff/fleet/nodes/<str:node_id>/drain/", fleet.fleet_node_drain, name="fleet-node-drain"),
    path("staff/fleet/nodes/<str:node_id>/undrain/", fleet.fleet_node_undrain, name="fleet-node-undrain"),
    path("staff/leases/", leases.staff_leases, name="staff-leases"),
    path("staff/capacity/", capacity.capacity, name="staff-capacity"),
    path("staff/capacity/share/", capacity.capacity_share, name="staff-capacity-share"),
    path("api/v1/regions/", regions_api.RegionListApi.as_view(), name="api-regions"),
    path(
        "api/v1/regions/<slug:code>/timeline/", capacity_api.TimelineApi.as_view(), name="api-region-timeline"
    ),
    path("api/v1/availability/", capacity_api.AvailabilityApi.as_view(), name="api-availability"),
    path("api/v1/quotes/", capacity_api.QuoteApi.as_view(), name="api-quotes"),
    path("api/v1/capacity/offerings/", offerings_api.OfferingsApi.as_view(), name="api-offerings"),
    path(
        "api/v1/lease-requests/", lease_requests_api.LeaseRequestListApi.as_view(), name="api-lease-requests"
    ),
    path(
        "api/v1/lease-requests/<str:request_id>/",
        lease_requests_api.LeaseRequestDetailApi.as_view(),
        name="api-lease-request",
    ),
    path(
        "api/v1/lease-requests/<str:request_id>/cancel/",
        lease_requests_api.LeaseRequestCancelApi.as_view(),
        name="api-lease-request-cancel",
    ),
    path("api/v1/leases/", leases_api.LeaseListApi.as_view(), name="api-leases"),
    path("api/v1/leases/<str:lease_id>/", leases_api.LeaseDetailApi.as_view(), name="api-lease"),
    path(
        "api/v1/leases/<str:lease_id>/extend/", leases_api.LeaseExtendApi.as_view(), name="api-lease-extend"
    ),
    path(
        "api/v1/leases/<str:lease_id>/release/",
        leases_api.LeaseReleaseApi.as_view(),
        name="api-lease-release",
    ),
    path(
        "api/v1/leases/<str:lease_id>/cancel/", leases_api.LeaseCancelApi.as_view(), name="api-lease-cancel"
    ),
    path(
        "api/v1/leases/<str:lease_id>/replace/",
        leases_api.LeaseReplaceApi.as_view(),
        name="api-lease-replace",
    ),
    path(
        "api/v1/leases/<str:public_id>/telemetry/",
        telemetry_api.LeaseTelemetryApi.as_view(),
        name="api-lease-telemetry",
    ),
    path("api/v1/nodes/", nodes_api.NodeListApi.as_view(), name="api-nodes"),
    path("api/v1/nodes/<str:public_id>/drain/", nodes_api.NodeDrainApi.as_view(), name="api-node-drain"),
    path(
        "api/v1/nodes/<str:public_id>/undrain/", nodes_api.NodeUndrainApi.as_view(), name="api-node-undrain"
    ),
]
