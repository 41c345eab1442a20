"""Page-view guards by role: the browser counterpart of accounts.permissions."""

from collections.abc import Callable, Iterable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.models import Organization, User
from accounts.selectors.staff import staff_without_mfa
from accounts.selectors.viewer import Viewer, viewer_of

View = Callable[..., HttpResponse]

STAFF_MFA_NEEDED = (
    "Voltpark staff pages need two-factor authentication. Set up an authenticator app or a passkey "
    "here, then open the page again."
)

NO_ORGANIZATION = "This page is for members of an organization: create yours, or accept your invitation."


class AuthenticatedHttpRequest(HttpRequest):
    """The request a guarded page receives: its user is signed in (the guards below ensure it)."""

    user: User


def acting_organization(request: HttpRequest) -> Organization:
    """The organization a page behind organization_role_required acts in (the guard ensures one)."""
    organization = viewer_of(request).organization
    if organization is None:
        raise PermissionDenied("Join or create an organization first.")
    return organization


def organization_role_required(roles: Iterable[str]) -> Callable[[View], View]:
    """Let in signed-in people acting in an organization with one of `roles`; 403 for the rest."""
    allowed = frozenset(roles)

    def check(viewer: Viewer) -> None:
        if viewer.organization is None:
            raise PermissionDenied("This page is for members of an organization.")
        if viewer.role not in allowed:
            raise PermissionDenied("Your role in this organization does not allow this page.")

    return _guard(check, organization=True)


def staff_admin_required(view: View) -> View:
    """Let in staff admins only; staff without a second factor are sent to set one up."""

    def check(viewer: Viewer) -> None:
        if not viewer.is_staff_admin:
            raise PermissionDenied("This page is for Voltpark staff admins.")

    return _guard(check, staff=True)(view)


def staff_finance_required(view: View) -> View:
    """Let in staff finance only; staff without a second factor are sent to set one up."""

    def check(viewer: Viewer) -> None:
        if not viewer.is_staff_finance:
            raise PermissionDenied("This page is for Voltpark finance staff.")

    return _guard(check, staff=True)(view)


def _guard(
    check: Callable[[Viewer], None], *, staff: bool = False, organization: bool = False
) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if staff and staff_without_mfa(request.user):
                messages.warning(request, STAFF_MFA_NEEDED)
                return redirect("mfa_index")
            viewer = viewer_of(request)
            if organization and viewer.organization is None and not viewer.is_staff:
                # Not a dead end: the welcome page creates an organization or points to the invitation.
                messages.info(request, NO_ORGANIZATION)
                return redirect("welcome")
            check(viewer)
            return view(request, *args, **kwargs)

        return login_required(wrapper)

    return decorator
