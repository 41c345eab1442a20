"""The Django admin behind the site's own sign-in: log-in through allauth (so a second factor is
asked), staff only once they have set one up, and every change it makes in the audit trail."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


class AuditedAdmin(admin.ModelAdmin):
    """A model admin whose every addition, change and deletion also goes to the audit trail, in the
    transaction of the change (Django's own LogEntry is kept too: the admin's history pages read it)."""

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        logged = super().log_addition(request, obj, message)
        _audit(request, "admin.add", obj, logged)
        return logged

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        logged = super().log_change(request, obj, message)
        _audit(request, "admin.change", obj, logged)
        return logged

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        # Called before the deletion, for one object or for the "delete selected" action's many.
        objects = list(queryset)
        logged = super().log_deletions(request, queryset)
        for obj in objects:
            _audit(request, "admin.delete", obj, None)
        return logged


def _audit(request: HttpRequest, action: str, obj: Any, logged: Any) -> None:
    from accounts.services.audit import admin_change_record

    change = logged.get_change_message() if logged is not None else "Deleted."
    admin_change_record(actor=request.user, action=action, obj=obj, change=change or action)  # type: ignore[arg-type]


class VoltparkAdminSite(admin.AdminSite):
    """Django's admin site, entered only by staff admins with MFA, signed in through allauth; every
    model registered on it is audited (`AuditedAdmin`)."""

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedAdmin):
            admin_class = type(
                admin_class.__name__, (AuditedAdmin, admin_class), {"__module__": admin_class.__module__}
            )
        super().register(model_or_iterable, admin_class, **options)

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
