"""The booking page: the form, its live check (fit, price, quota), and the 14-day calendar."""

import math
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.safestring import SafeString

from accounts.choices import ROLES_THAT_BOOK
from accounts.models import Organization
from accounts.selectors.booking import booking_blockers
from accounts.selectors.viewer import viewer_of
from accounts.views.decorators import AuthenticatedHttpRequest, organization_role_required
from clusters.choices import LeaseKind
from clusters.forms.booking import BookingForm
from clusters.models import Lease, Region
from clusters.selectors.capacity import (
    Availability,
    RegionTimeline,
    availability_for,
    booking_calendar,
    on_demand_until,
    quota_left,
)
from clusters.selectors.offerings import Alternatives, alternatives_for
from clusters.selectors.prices import NoPrice, Quote, quote
from clusters.services.booking import LeaseOptions, lease_book
from core.charts import Series, line_chart
from core.refusals import Refused
from core.timezones import remember_zone, render_in_zone, viewer_zone


@dataclass(frozen=True)
class UntilOffer:
    """On-demand from now in a region until the next reservation on enough of its GPUs."""

    region: Region
    end: datetime
    quote: Quote | None


@dataclass(frozen=True)
class Check:
    """What the page tells about a booking before it is made."""

    gpus: int
    availability: Availability
    quote: Quote | None
    quota_left: int
    quota: int
    alternatives: Alternatives | None = None  # when it does not fit: what can be booked instead
    # When open-ended on-demand does not fit: per region, on-demand from now until the next reservation.
    on_demand_until: tuple[UntilOffer, ...] = ()
    queue_hours: int | None = None  # a reserved window's length, whole hours up, to queue for it
    # A reserved lease is paid when booked and refunded only if cancelled before this (billing's rule).
    free_cancel_until: datetime | None = None

    @property
    def fits(self) -> bool:
        return self.availability.can_place and self.gpus <= self.quota_left

    @property
    def quota_needed(self) -> int:
        """The quota this booking would need: what the window already holds, plus these GPUs."""
        return self.quota - self.quota_left + self.gpus


def booking_check_for(form: BookingForm, organization: Organization) -> Check | None:
    """Availability, price and quota for a valid form; None while it has errors."""
    if not form.is_valid():
        return None
    data, window = form.cleaned_data, form.window
    reserved = data["kind"] == LeaseKind.RESERVED
    found = availability_for(
        region=data["region"], window=window, gpus=data["gpus"], organization=organization
    )
    # On-demand is billed as it runs, "until" or not: its quote is a rate, never a commitment.
    price = _quote(data["kind"], data["region"], data["gpus"], window.start, window.end if reserved else None)
    left = quota_left(organization=organization, window=window)
    alternatives = None
    until: tuple[UntilOffer, ...] = ()
    if not found.can_place:
        alternatives = alternatives_for(organization=organization, gpus=data["gpus"], window=window)
        if window.end is None:
            until = _until_offers(organization, data["gpus"], window.start)
    hours = math.ceil(window.hours) if reserved and window.hours is not None else None
    free_until = window.start - settings.RESERVED_FREE_CANCEL if reserved else None
    return Check(
        data["gpus"], found, price, left, organization.gpu_quota, alternatives, until, hours, free_until
    )


def _quote(kind: str, region: Region, gpus: int, start: datetime, end: datetime | None) -> Quote | None:
    try:
        return quote(kind=kind, region=region, gpus=gpus, start=start, end=end)
    except NoPrice:
        return None


def _until_offers(organization: Organization, gpus: int, now: datetime) -> tuple[UntilOffer, ...]:
    return tuple(
        UntilOffer(region, end, _quote(LeaseKind.ON_DEMAND, region, gpus, now, None))
        for region, end in on_demand_until(organization=organization, gpus=gpus)
    )


DEFAULT_GPUS = 8


def _form(request: AuthenticatedHttpRequest, data: object = None) -> BookingForm:
    # A bound form shows its data, never its initial values: look the first region up only when unbound.
    initial = {"region": _first_region()} if data is None else {}
    return BookingForm(data, user=request.user, initial=initial)


def _first_region() -> str | None:
    return Region.objects.order_by("code").values_list("code", flat=True).first()


def _probe(request: AuthenticatedHttpRequest, blank: BookingForm) -> BookingForm:
    """The blank form as first shown, bound, so the page opens with its check filled in."""
    initial = {**blank.initial, "gpus": DEFAULT_GPUS, "kind": LeaseKind.ON_DEMAND, "tz": "UTC"}
    return _form(request, initial)


@organization_role_required(ROLES_THAT_BOOK)
def booking(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Book GPUs; without JavaScript the form posts and shows its errors here."""
    organization = viewer_of(request).organization
    assert organization is not None
    form = _form(request, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        remember_zone(request, form.cleaned_data["tz"])
        lease = _book(request, form, organization)
        if lease is not None:
            return redirect("lease-detail", lease_id=lease.public_id)
    check = booking_check_for(form if form.is_bound else _probe(request, form), organization)
    context: dict[str, object] = {
        "form": form,
        "check": check,
        "calendar": _calendar(organization, request),
        "org": organization,
        "blockers": booking_blockers(user=request.user, organization=organization),
        "free_cancel_hours": int(settings.RESERVED_FREE_CANCEL.total_seconds() // 3600),
    }
    return render_in_zone(request, "clusters/booking.html", context)


def _book(request: AuthenticatedHttpRequest, form: BookingForm, organization: Organization) -> Lease | None:
    if form.refuse_no_key_ticked():
        return None
    data = form.cleaned_data
    try:
        return lease_book(
            user=request.user,
            organization=organization,
            region=data["region"],
            gpus=data["gpus"],
            kind=data["kind"],
            start=data["start"],
            end=data["end"],
            ssh_keys=list(data["ssh_keys"]),
            options=LeaseOptions(replace_automatically=data["replace_automatically"]),
        )
    except (ValidationError, Refused) as error:
        form.refuse(error)
        if isinstance(error, Refused) and error.status == 402:
            # Refused for money: the page links to where it is sorted out (the billing page).
            form.payment_refused = True  # type: ignore[attr-defined]
    return None


@organization_role_required(ROLES_THAT_BOOK)
def booking_check(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The live part of the booking page (htmx): whether it fits, the price and the quota left."""
    organization = viewer_of(request).organization
    assert organization is not None
    form = _form(request, request.GET)
    check = booking_check_for(form, organization)
    if "tz" in form.cleaned_data:
        remember_zone(request, form.cleaned_data["tz"])  # the browser's zone, for the pages that follow
    context: dict[str, object] = {
        "form": form,
        "check": check,
        # The fields whose errors sit under them on the page (the others' are in the panel only).
        "oob_errors": OOB_ERROR_FIELDS if request.headers.get("HX-Request") == "true" else (),
    }
    return render_in_zone(request, "clusters/_booking_check.html", context)


OOB_ERROR_FIELDS = ("region", "gpus", "start", "end")
CALENDAR_DAYS_SHOWN_AS_TABLE = 14


def _calendar(organization: Organization, request: AuthenticatedHttpRequest) -> dict[str, object]:
    timelines = booking_calendar(organization)
    zone = viewer_zone(request)
    return {
        "chart": _calendar_chart(timelines, zone),
        "rows": _calendar_rows(timelines, zone),
        "regions": [f"{timeline.region.name} ({timeline.region.code})" for timeline in timelines],
    }


def _calendar_chart(timelines: list[RegionTimeline], zone: tzinfo) -> SafeString:
    series = [
        Series(f"{t.region.name} ({t.region.code})", [(h.start, h.free_gpus) for h in t.hours])
        for t in timelines
    ]
    return line_chart(
        title="Free GPUs per hour, next 14 days",
        description="For each region, the GPUs free to your organization in each hour of the next 14 days.",
        series=series,
        y_label="free GPUs",
        tz=zone,
        width=720,
        height=260,
    )


def _calendar_rows(timelines: list[RegionTimeline], zone: tzinfo) -> list[dict[str, object]]:
    """A table of the fewest free GPUs per day (in the viewer's zone) and region: the chart's numbers."""
    free_by_day: dict[date, list[int]] = {}
    for timeline in timelines:
        for day, free in timeline.daily_minimum(zone)[:CALENDAR_DAYS_SHOWN_AS_TABLE]:
            free_by_day.setdefault(day, []).append(free)
    return [{"day": day, "free": free} for day, free in free_by_day.items()]
