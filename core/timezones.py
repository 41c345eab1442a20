"""The viewer's time zone: detected in the browser, remembered in the session, used by templates.

Times are stored and computed in UTC; only rendering (and reading a time someone typed) uses the
viewer's zone. An unknown or missing zone is UTC.
"""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

SESSION_KEY = "time_zone"


UTC = ZoneInfo("UTC")


def zone_named(name: str | None) -> ZoneInfo | None:
    """The zone with this IANA name (Europe/Paris), or None when there is no such zone."""
    if not name or name not in _known_zones():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _known_zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones() | {"UTC"}
    return _ZONES


_ZONES: set[str] | None = None


def remember_zone(request: HttpRequest, zone: ZoneInfo) -> None:
    """Keep the zone the browser reported, for the pages that follow."""
    request.session[SESSION_KEY] = zone.key


def viewer_zone(request: HttpRequest) -> ZoneInfo:
    """The zone this viewer's browser reported, UTC until it has."""
    return zone_named(request.session.get(SESSION_KEY)) or UTC


def render_in_zone(request: HttpRequest, template: str, context: dict[str, object]) -> HttpResponse:
    """Render with the viewer's zone active, so template dates show in it."""
    zone = viewer_zone(request)
    with timezone.override(zone):
        return render(request, template, {**context, "viewer_zone": zone.key})
