"""Routes of accounts: sign-up and log-in, the organization, SSH keys and API tokens; pages and API."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.api import ssh_keys as ssh_keys_api
from accounts.forms.auth import EmailLoginForm
from accounts.views import auth, organizations, ssh_keys, tokens

urlpatterns = [
    path("signup/", auth.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(authentication_form=EmailLoginForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("invitations/<str:secret>/", organizations.invitation, name="invitation-accept"),
    path("organization/", organizations.organization_settings, name="organization-settings"),
    path("organization/switch/", organizations.switch, name="organization-switch"),
    path("organization/members/role/", organizations.member_role, name="member-role"),
    path("organization/members/remove/", organizations.member_remove, name="member-remove"),
    path(
        "organization/invitations/<str:invitation_id>/revoke/",
        organizations.invitation_remove,
        name="invitation-revoke",
    ),
    path("account/ssh-keys/", ssh_keys.ssh_keys, name="ssh-keys"),
    path("account/ssh-keys/<str:key_id>/remove/", ssh_keys.ssh_key_remove, name="ssh-key-remove"),
    path("account/tokens/", tokens.api_tokens, name="api-tokens"),
    path("account/tokens/<str:token_id>/revoke/", tokens.api_token_remove, name="api-token-revoke"),
    path("api/v1/ssh-keys/", ssh_keys_api.SshKeyListApi.as_view(), name="api-ssh-keys"),
    path("api/v1/ssh-keys/<str:key_id>/", ssh_keys_api.SshKeyDetailApi.as_view(), name="api-ssh-key"),
]
