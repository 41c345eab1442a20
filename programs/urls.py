"""Routes of the early-stage program: the owner's application, the staff queue; pages and API."""

from django.urls import path

from programs.api import early_stage as early_stage_api
from programs.views import early_stage

urlpatterns = [
    path("organization/early-stage/", early_stage.early_stage, name="early-stage"),
    path("staff/early-stage/", early_stage.early_stage_queue_page, name="early-stage-queue"),
    path(
        "staff/early-stage/<str:application_id>/approve/",
        early_stage.early_stage_approve_page,
        name="early-stage-approve",
    ),
    path(
        "staff/early-stage/<str:application_id>/reject/",
        early_stage.early_stage_reject_page,
        name="early-stage-reject",
    ),
    path(
        "api/v1/early-stage/applications/",
        early_stage_api.ApplicationListApi.as_view(),
        name="api-early-stage-applications",
    ),
    path(
        "api/v1/early-stage/queue/",
        early_stage_api.ApplicationQueueApi.as_view(),
        name="api-early-stage-queue",
    ),
    path(
        "api/v1/early-stage/applications/<str:application_id>/approve/",
        early_stage_api.ApplicationApproveApi.as_view(),
        name="api-early-stage-approve",
    ),
    path(
        "api/v1/early-stage/applications/<str:application_id>/reject/",
        early_stage_api.ApplicationRejectApi.as_view(),
        name="api-early-stage-reject",
    ),
]
