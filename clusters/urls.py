from django.urls import path

from clusters import views

urlpatterns = [
    path("", views.home, name="home"),
]

# --- Run time: the Prometheus scrape endpoint (no trailing slash, as scrapers expect).
from clusters.metrics import metrics  # noqa: E402

urlpatterns += [path("metrics", metrics, name="metrics")]

# --- Staff pages (issue 6): the fleet, its nodes, every organization's leases.
from clusters import views_staff  # noqa: E402

urlpatterns += [
    path("staff/fleet/", views_staff.fleet, name="fleet"),
    path("staff/fleet/nodes/<str:node_id>/", views_staff.fleet_node, name="fleet-node"),
    path("staff/fleet/nodes/<str:node_id>/drain/", views_staff.fleet_node_drain, name="fleet-node-drain"),
    path(
        "staff/fleet/nodes/<str:node_id>/undrain/", views_staff.fleet_node_undrain, name="fleet-node-undrain"
    ),
    path("staff/leases/", views_staff.staff_leases, name="staff-leases"),
]

# --- Browser pages for startups (issue 6): booking and the organization's leases.
from clusters import views_booking, views_leases  # noqa: E402

urlpatterns += [
    path("book/", views_booking.booking, name="booking"),
    path("book/check/", views_booking.booking_check, name="booking-check"),
    path("leases/", views_leases.lease_list, name="lease-list"),
    path("leases/<str:lease_id>/", views_leases.lease_detail, name="lease-detail"),
    path("leases/<str:lease_id>/live/", views_leases.lease_live, name="lease-live"),
    path("leases/<str:lease_id>/extend/", views_leases.lease_extend_view, name="lease-extend"),
    path("leases/<str:lease_id>/release/", views_leases.lease_release_view, name="lease-release"),
]
