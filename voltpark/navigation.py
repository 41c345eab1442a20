"""The main navigation: each entry says who may see it; the base layout renders what the viewer may.

Pages add themselves with one `NavEntry` line in `NAV_ENTRIES`; every entry names a routed page
(a test renders the navigation for every role, so a name that does not resolve fails it).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from accounts.selectors.viewer import Viewer, viewer_of


class Section:
    """Where an entry sits in the header."""

    ORGANIZATION = "organization"
    ACCOUNT = "account"
    STAFF = "staff"


@dataclass(frozen=True)
class NavEntry:
    """One link of the navigation, shown to viewers for whom `allowed(viewer)` is true."""

    label: str
    url_name: str
    section: str
    allowed: Callable[[Viewer], bool]


@dataclass(frozen=True)
class NavLink:
    """A rendered entry: its label, its URL and whether it is the page being shown."""

    label: str
    url: str
    current: bool


def _signed_in(viewer: Viewer) -> bool:
    return viewer.user.is_authenticated


def _has_ssh_use(viewer: Viewer) -> bool:
    return viewer.can_book or (viewer.user.is_authenticated and viewer.organization is None)


def _without_organization(viewer: Viewer) -> bool:
    return viewer.user.is_authenticated and viewer.organization is None and not viewer.is_staff


NAV_ENTRIES: list[NavEntry] = [
    NavEntry("Get started", "welcome", Section.ORGANIZATION, _without_organization),
    NavEntry("Book GPUs", "booking", Section.ORGANIZATION, lambda v: v.can_book),
    NavEntry("Leases", "lease-list", Section.ORGANIZATION, lambda v: v.can_book),
    NavEntry("Queued requests", "lease-request-list", Section.ORGANIZATION, lambda v: v.can_book),
    NavEntry("Billing", "billing", Section.ORGANIZATION, lambda v: v.sees_invoices),
    NavEntry("Organization", "organization-settings", Section.ORGANIZATION, lambda v: v.can_book),
    NavEntry("SSH keys", "ssh-keys", Section.ACCOUNT, _has_ssh_use),
    NavEntry("API tokens", "api-tokens", Section.ACCOUNT, _signed_in),
    NavEntry("Two-factor", "mfa_index", Section.ACCOUNT, _signed_in),
    NavEntry("Fleet", "fleet", Section.STAFF, lambda v: v.is_staff_admin),
    NavEntry("Early-stage queue", "early-stage-queue", Section.STAFF, lambda v: v.is_staff_admin),
    NavEntry("All leases", "staff-leases", Section.STAFF, lambda v: v.is_staff_admin),
    NavEntry("Capacity", "staff-capacity", Section.STAFF, lambda v: v.is_staff_admin),
    NavEntry("Finance", "finance", Section.STAFF, lambda v: v.is_staff_finance),
    NavEntry("Admin", "admin:index", Section.STAFF, lambda v: v.is_staff_admin),
]


def nav_links(request: HttpRequest, viewer: Viewer) -> dict[str, list[NavLink]]:
    """The entries this viewer may see, by section, with the current page marked."""
    sections: dict[str, list[NavLink]] = {Section.ORGANIZATION: [], Section.ACCOUNT: [], Section.STAFF: []}
    for entry in NAV_ENTRIES:
        if not entry.allowed(viewer):
            continue
        url = reverse(entry.url_name)
        current = request.path == url or (url != "/" and request.path.startswith(url))
        sections[entry.section].append(NavLink(entry.label, url, current))
    return sections


def navigation(request: HttpRequest) -> dict[str, object]:
    """Context processor: `nav.organization`, `nav.account` and `nav.staff` link lists."""
    if not hasattr(request, "user"):
        return {"nav": {}}
    return {"nav": nav_links(request, viewer_of(request))}
