"""Which organization a request acts in: the token's, else the one chosen in the switcher."""

from dataclasses import dataclass, field

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from accounts.choices import ROLES_THAT_BOOK, ROLES_THAT_MANAGE_MEMBERS, ROLES_THAT_SEE_INVOICES
from accounts.models import ApiToken, Membership, Organization, User
from accounts.selectors.organizations import memberships_of
from accounts.selectors.staff import is_staff_admin, is_staff_finance, staff_without_mfa

SESSION_KEY = "organization_slug"


HEADER = "HTTP_X_VOLTPARK_ORGANIZATION"


_VIEWER_ATTR = "_voltpark_viewer"


def current_organization(request: HttpRequest) -> Organization | None:
    """The organization this request acts in, always one the user belongs to."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        return auth.organization
    return viewer_of(request).organization


def switch_organization(request: HttpRequest, organization: Organization) -> None:
    """Remember the organization chosen in the switcher for this browser session."""
    request.session[SESSION_KEY] = organization.slug
    request.__dict__.pop(_VIEWER_ATTR, None)


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page: the user, the organization they act in and their role there."""

    user: User | AnonymousUser
    organization: Organization | None = None
    role: str | None = None
    memberships: list[Membership] = field(default_factory=list)

    @property
    def organizations(self) -> list[Organization]:
        return [membership.organization for membership in self.memberships]

    @property
    def is_owner(self) -> bool:
        return self.role in ROLES_THAT_MANAGE_MEMBERS

    @property
    def can_book(self) -> bool:
        return self.role in ROLES_THAT_BOOK

    @property
    def sees_invoices(self) -> bool:
        return self.role in ROLES_THAT_SEE_INVOICES

    @property
    def is_staff_admin(self) -> bool:
        return is_staff_admin(self.user)

    @property
    def is_staff_finance(self) -> bool:
        return is_staff_finance(self.user)

    @property
    def is_staff(self) -> bool:
        """Holds a staff role, admin or finance, with or without its second factor yet: staff work
        without an organization."""
        return self.is_staff_admin or self.is_staff_finance or staff_without_mfa(self.user)


def viewer_of(request: HttpRequest) -> Viewer:
    """The request's viewer, read once per request (one query) and kept on the request."""
    cached = getattr(request, _VIEWER_ATTR, None)
    if cached is None:
        cached = _read_viewer(request)
        setattr(request, _VIEWER_ATTR, cached)
    return cached


def _read_viewer(request: HttpRequest) -> Viewer:
    user = request.user
    if not user.is_authenticated:
        return Viewer(user=user)
    memberships = list(memberships_of(user))
    wanted = request.META.get(HEADER) or request.session.get(SESSION_KEY)
    chosen = next((m for m in memberships if m.organization.slug == wanted), None)
    chosen = chosen or (memberships[0] if memberships else None)
    if chosen is None:
        return Viewer(user=user)
    return Viewer(user=user, organization=chosen.organization, role=chosen.role, memberships=memberships)
