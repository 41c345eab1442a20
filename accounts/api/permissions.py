"""DRF permissions by role in the organization the request acts in, and by staff role."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.choices import ROLES_THAT_BOOK, ROLES_THAT_PAY, ROLES_THAT_SEE_INVOICES
from accounts.models import Organization, User
from accounts.selectors.organizations import role_in
from accounts.selectors.staff import is_staff_admin, is_staff_finance, staff_without_mfa
from accounts.selectors.viewer import current_organization
from accounts.services.refusals import MfaRequired


class AuthenticatedRequest(Request):
    """The request an API view receives once authentication and a permission below let it in."""

    user: User


class OrganizationRequest(AuthenticatedRequest):
    """The request of a view guarded by an organization role: the organization it acts in is set."""

    organization: Organization


class _OrganizationRole(BasePermission):
    roles: set[str] = set()
    message = "Your role in this organization does not allow this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        organization = current_organization(request)
        if organization is None or not isinstance(request.user, User):
            self.message = "Act in an organization: use a token made for one, or join one first."
            return False
        request.organization = organization  # type: ignore[attr-defined]
        return role_in(request.user, organization) in self.roles


class CanBook(_OrganizationRole):
    """Owners and members book, extend and release leases."""

    roles = set(ROLES_THAT_BOOK)


class CanSeeInvoices(_OrganizationRole):
    """Owners and finance members see the organization's invoices."""

    roles = set(ROLES_THAT_SEE_INVOICES)


class CanPay(_OrganizationRole):
    """Owners add the card, top up and set spend limits."""

    roles = set(ROLES_THAT_PAY)


class IsStaffAdmin(BasePermission):
    """Staff admins run the fleet (with a second factor: 403 `mfa_required` until they have one)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        _refuse_staff_without_mfa(request)
        return is_staff_admin(request.user)


class IsStaffFinance(BasePermission):
    """Staff finance see every organization's money (with a second factor, as above)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        _refuse_staff_without_mfa(request)
        return is_staff_finance(request.user)


def _refuse_staff_without_mfa(request: Request) -> None:
    if staff_without_mfa(request.user):
        raise MfaRequired()


class CanSeeMoney(BasePermission):
    """Staff finance, or an owner or finance member of the organization the request acts in."""

    message = CanSeeInvoices.message

    def has_permission(self, request: Request, view: APIView) -> bool:
        if IsStaffFinance().has_permission(request, view):
            return True
        check = CanSeeInvoices()
        allowed = check.has_permission(request, view)
        self.message = check.message
        return allowed


class CanSeeUsage(BasePermission):
    """Every member of the organization sees its usage."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return CanBook().has_permission(request, view) or CanSeeInvoices().has_permission(request, view)
