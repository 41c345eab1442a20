"""Routes of the early-stage program and of quota requests: the owner's application and requests, the
staff queue that decides both; pages and API."""

from django.urls import path

from programs.api import early_stage as early_stage_api
from programs.api import quota_requests as quota_requests_api
from programs.views import early_stage, queue, quota_requests

urlpatterns = [
    path("organization/early-stage/", early_stage.early_stage, name="early-stage"),
    path("staff/early-stage/", queue.early_stage_queue_page, name="early-stage-queue"),
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
    path("organization/quota/", quota_requests.quota, name="quota"),
    path(
        "staff/quota-requests/<str:request_id>/approve/",
        quota_requests.quota_request_approve_page,
        name="quota-request-approve",
    ),
    path(
        "staff/quota-requests/<str:request_id>/reject/",
        quota_requests.quota_request_reject_page,
        name="quota-request-reject",
    ),
    path(
        "api/v1/quota-requests/", quota_requests_api.QuotaRequestListApi.as_view(), name="api-quota-requests"
    ),
    path(
        "api/v1/quota-requests/queue/",
        quota_requests_api.QuotaRequestQueueApi.as_view(),
        name="api-quota-request-queue",
    ),
    path(
        "api/v1/quota-requests/<str:request_id>/approve/",
        quota_requests_api.QuotaRequestApproveApi.as_view(),
        name="api-quota-request-approve",
    ),
    path(
        "api/v1/quota-requests/<str:request_id>/reject/",
        quota_requests_api.QuotaRequestRejectApi.as_view(),
        name="api-quota-request-reject",
    ),
]
