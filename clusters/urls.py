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
