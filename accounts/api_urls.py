from django.urls import path

from accounts import api

urlpatterns = [
    path("ssh-keys/", api.SshKeyListApi.as_view(), name="api-ssh-keys"),
    path("ssh-keys/<str:key_id>/", api.SshKeyDetailApi.as_view(), name="api-ssh-key"),
]
