from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views
from accounts.forms import EmailLoginForm

urlpatterns = [
    path("signup/", views.signup, name="signup"),
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
    path("invitations/<str:secret>/", views.invitation, name="invitation-accept"),
    path("organization/", views.organization_settings, name="organization-settings"),
    path("organization/switch/", views.switch, name="organization-switch"),
    path("organization/members/role/", views.member_role, name="member-role"),
    path("organization/members/remove/", views.member_remove, name="member-remove"),
    path(
        "organization/invitations/<str:invitation_id>/revoke/",
        views.invitation_remove,
        name="invitation-revoke",
    ),
    path("account/ssh-keys/", views.ssh_keys, name="ssh-keys"),
    path("account/ssh-keys/<str:key_id>/remove/", views.ssh_key_remove, name="ssh-key-remove"),
    path("account/tokens/", views.api_tokens, name="api-tokens"),
    path("account/tokens/<str:token_id>/revoke/", views.api_token_remove, name="api-token-revoke"),
]

# --- Staff pages (issue 6): the early-stage queue.
from accounts import views_staff  # noqa: E402

urlpatterns += [
    path("staff/early-stage/", views_staff.early_stage_queue_page, name="early-stage-queue"),
    path(
        "staff/early-stage/<str:application_id>/approve/",
        views_staff.early_stage_approve_page,
        name="early-stage-approve",
    ),
    path(
        "staff/early-stage/<str:application_id>/reject/",
        views_staff.early_stage_reject_page,
        name="early-stage-reject",
    ),
]

# --- Startup pages (issue 6): the early-stage program application and its status.
from accounts import views_application  # noqa: E402

urlpatterns += [path("organization/early-stage/", views_application.early_stage, name="early-stage")]
