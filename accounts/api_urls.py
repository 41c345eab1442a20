from django.urls import path

from accounts import api, api_early_stage

urlpatterns = [
    path("ssh-keys/", api.SshKeyListApi.as_view(), name="api-ssh-keys"),
    path("ssh-keys/<str:key_id>/", api.SshKeyDetailApi.as_view(), name="api-ssh-key"),
    path(
        "early-stage/applications/",
        api_early_stage.ApplicationListApi.as_view(),
        name="api-early-stage-applications",
    ),
    path("early-stage/queue/", api_early_stage.ApplicationQueueApi.as_view(), name="api-early-stage-queue"),
    path(
        "early-stage/applications/<str:application_id>/approve/",
        api_early_stage.ApplicationApproveApi.as_view(),
        name="api-early-stage-approve",
    ),
    path(
        "early-stage/applications/<str:application_id>/reject/",
        api_early_stage.ApplicationRejectApi.as_view(),
        name="api-early-stage-reject",
    ),
]
