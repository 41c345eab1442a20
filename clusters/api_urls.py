from django.urls import path

from clusters import api

urlpatterns = [
    path("regions/", api.RegionListApi.as_view(), name="api-regions"),
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
