"""DRF permissions by role, resolved against the request's organization."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.choices import ROLES_THAT_BOOK, ROLES_THAT_SEE_INVOICES
from accounts.context import current_organization
from accounts.selectors import role_in


class _OrganizationRole(BasePermission):
    roles: set[str] = set()
    message = "Your role in this organization does not allow this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        organization = current_organization(request)
        if organization is None:
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


class IsStaffAdmin(BasePermission):
    """Staff admins run the fleet."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class IsStaffFinance(BasePermission):
    """Staff finance see every organization's money."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_finance_staff or user.is_superuser))
