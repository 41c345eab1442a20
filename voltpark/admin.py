"""The Django admin behind the site's own sign-in: log-in through allauth (so a second factor is
asked), and staff only once they have set one up."""

from django.contrib import admin, messages
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


class VoltparkAdminSite(admin.AdminSite):
    """Django's admin site, entered only by staff admins with MFA, signed in through allauth."""

    def has_permission(self, request: HttpRequest) -> bool:
        from accounts.selectors.staff import is_staff_admin

        return super().has_permission(request) and is_staff_admin(request.user)

    def login(self, request: HttpRequest, extra_context: dict[str, object] | None = None) -> HttpResponse:
        # Django's own log-in form would take a password alone; allauth's asks for the second factor.
        # (Imported here: this module is loaded with the app registry, before any model.)
        from django.contrib.auth.views import redirect_to_login

        from accounts.selectors.staff import staff_without_mfa
        from accounts.views.decorators import STAFF_MFA_NEEDED

        if staff_without_mfa(request.user):
            messages.warning(request, STAFF_MFA_NEEDED)
            return redirect("mfa_index")
        if request.user.is_authenticated:
            return super().login(request, extra_context)
        return redirect_to_login(request.GET.get("next") or request.get_full_path())


class VoltparkAdminConfig(AdminConfig):
    """django.contrib.admin with the site above as `admin.site`."""

    default_site = "voltpark.admin.VoltparkAdminSite"
