"""Routes of accounts: allauth's sign-up, log-in, reset and verification pages (at the root:
/signup/, /login/, /logout/, /password/reset/, /email/, /confirm-email/...), the organization, SSH
keys and API tokens; pages and API."""

from django.urls import include, path

from accounts.api import audit as audit_api
from accounts.api import ssh_keys as ssh_keys_api
from accounts.api import tokens as tokens_api
from accounts.views import audit, organizations, ssh_keys, sso, tokens

urlpatterns = [
    path("", include("allauth.urls")),
    path("welcome/", organizations.welcome, name="welcome"),
    path("invitations/<str:secret>/", organizations.invitation, name="invitation-accept"),
    path("organization/", organizations.organization_settings, name="organization-settings"),
    path("organization/audit/", audit.audit_trail, name="audit-trail"),
    path("organization/sso/", sso.sso_required, name="organization-sso"),
    path("organization/sso/require/", sso.sso_require, name="organization-sso-require"),
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
    path("api/v1/audit/", audit_api.AuditTrailApi.as_view(), name="api-audit"),
    path("api/v1/audit/export.csv", audit_api.AuditTrailCsvApi.as_view(), name="api-audit-csv"),
    path("api/v1/ssh-keys/", ssh_keys_api.SshKeyListApi.as_view(), name="api-ssh-keys"),
    path("api/v1/ssh-keys/<str:key_id>/", ssh_keys_api.SshKeyDetailApi.as_view(), name="api-ssh-key"),
    path("api/v1/tokens/", tokens_api.ApiTokenListApi.as_view(), name="api-token-list"),
    path("api/v1/tokens/<str:token_id>/", tokens_api.ApiTokenDetailApi.as_view(), name="api-token-detail"),
]
