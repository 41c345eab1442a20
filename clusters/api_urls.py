from django.urls import path

from clusters import api, booking_api

urlpatterns = [
    path("regions/", api.RegionListApi.as_view(), name="api-regions"),
    # --- Booking
    path("regions/<slug:code>/timeline/", booking_api.TimelineApi.as_view(), name="api-region-timeline"),
    path("availability/", booking_api.AvailabilityApi.as_view(), name="api-availability"),
    path("quotes/", booking_api.QuoteApi.as_view(), name="api-quotes"),
    path("leases/", booking_api.LeaseListApi.as_view(), name="api-leases"),
    path("leases/<str:lease_id>/", booking_api.LeaseDetailApi.as_view(), name="api-lease"),
    path("leases/<str:lease_id>/extend/", booking_api.LeaseExtendApi.as_view(), name="api-lease-extend"),
    path("leases/<str:lease_id>/release/", booking_api.LeaseReleaseApi.as_view(), name="api-lease-release"),
    path("leases/<str:lease_id>/cancel/", booking_api.LeaseCancelApi.as_view(), name="api-lease-cancel"),
]

# --- Run time: telemetry, and the fleet's nodes for staff.
from clusters import api_runtime  # noqa: E402

urlpatterns += [
    path(
        "leases/<str:public_id>/telemetry/",
        api_runtime.LeaseTelemetryApi.as_view(),
        name="api-lease-telemetry",
    ),
    path("nodes/", api_runtime.NodeListApi.as_view(), name="api-nodes"),
    path("nodes/<str:public_id>/drain/", api_runtime.NodeDrainApi.as_view(), name="api-node-drain"),
    path("nodes/<str:public_id>/undrain/", api_runtime.NodeUndrainApi.as_view(), name="api-node-undrain"),
]
