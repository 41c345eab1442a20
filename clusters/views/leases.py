"""Lease pages: the organization's list and detail, extend and release; staff's list."""

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from accounts.choices import ROLES_THAT_BOOK
from accounts.selectors.viewer import viewer_of
from accounts.views.decorators import (
    AuthenticatedHttpRequest,
    organization_role_required,
    staff_admin_required,
)
from clusters.choices import LIVE_LEASE_STATES, LeaseKind, LeaseState
from clusters.forms.leases import ExtendForm, LeaseFilterForm
from clusters.models import Lease
from clusters.selectors.capacity import extendable_until
from clusters.selectors.health import lease_health
from clusters.selectors.leases import (
    hostnames_of,
    lease_nodes,
    lease_of_organization_or_404,
    lease_usage_until,
    leases_for_staff,
    leases_grouped,
)
from clusters.selectors.telemetry import LeaseCharts, MetricSeries, lease_charts
from clusters.services.booking import lease_extend, lease_release
from clusters.services.refusals import BookingRefused
from clusters.services.remediation import lease_replacement_book, may_be_replaced
from core.charts import Series, Table, legend, line_chart, series_table
from core.durations import duration_words
from core.timezones import remember_zone, render_in_zone, viewer_zone


def _lease(request: AuthenticatedHttpRequest, lease_id: str) -> Lease:
    organization = viewer_of(request).organization
    assert organization is not None
    return lease_of_organization_or_404(organization, lease_id)


@organization_role_required(ROLES_THAT_BOOK)
def lease_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Upcoming, active and past leases."""
    organization = viewer_of(request).organization
    assert organization is not None
    return render_in_zone(request, "clusters/lease_list.html", {"groups": leases_grouped(organization)})


@organization_role_required(ROLES_THAT_BOOK)
def lease_detail(request: AuthenticatedHttpRequest, lease_id: str) -> HttpResponse:
    """One lease: nodes and how to reach them, time left, extend, release, and its GPUs' charts."""
    lease = _lease(request, lease_id)
    context = {
        **_live_context(request, lease),
        "nodes": lease_nodes(lease),
        "can_log_in": lease.state in LIVE_LEASE_STATES,
        "extend_form": ExtendForm() if _extendable(lease) else None,
        "extendable_until": extendable_until([lease])[lease.pk],
        "replaceable": may_be_replaced(lease),
    }
    return render_in_zone(request, "clusters/lease_detail.html", context)


@organization_role_required(ROLES_THAT_BOOK)
def lease_live(request: AuthenticatedHttpRequest, lease_id: str) -> HttpResponse:
    """The part of the lease page that changes while it runs (htmx polls it): state and charts."""
    lease = _lease(request, lease_id)
    return render_in_zone(request, "clusters/_lease_live.html", _live_context(request, lease))


def _live_context(request: AuthenticatedHttpRequest, lease: Lease) -> dict[str, object]:
    now = timezone.now()
    charts = lease_charts(lease, now)
    return {
        "lease": lease,
        "now": now,
        "time_left": _time_left(lease, now),
        "usage": lease_usage_until(lease, now),
        "health": lease_health(lease, now),
        "charts": charts,
        "svgs": _svgs(charts, request),
        "polling": lease.state in LIVE_LEASE_STATES,
        "refresh_s": settings.LEASE_PAGE_REFRESH_S,
    }


def _time_left(lease: Lease, now: datetime) -> str | None:
    if lease.state not in LIVE_LEASE_STATES or lease.end is None:
        return None
    return duration_words(max(lease.end - now, timedelta(0)))


@dataclass(frozen=True)
class _Chart:
    """One metric as the lease page draws it: caption, chart, legend and the table of its numbers."""

    caption: str
    svg: SafeString
    legend: SafeString
    table: Table


def _svgs(charts: LeaseCharts, request: AuthenticatedHttpRequest) -> list[_Chart]:
    """Each metric's caption, SVG chart, legend and table."""
    zone = viewer_zone(request)
    drawn = []
    for metric in charts.metrics:
        series = [Series(name, points) for name, points in metric.lines.items()]
        drawn.append(
            _Chart(
                f"{metric.title} ({metric.unit})",
                _chart(metric, series, zone),
                legend([one.name for one in series]),
                series_table(series, tz=zone),
            )
        )
    return drawn


def _chart(metric: MetricSeries, series: list[Series], zone: tzinfo) -> SafeString:
    return line_chart(
        title=metric.title,
        description=f"{metric.title} ({metric.unit}) of each GPU of the lease over time; "
        "the table under the chart has the numbers.",
        series=series,
        y_label=metric.unit,
        y_max=100 if metric.key == "utilization_pct" else None,
        tz=zone,
        width=560,
        height=220,
        legend=False,
        focusable=True,
    )


def _extendable(lease: Lease) -> bool:
    return lease.kind == LeaseKind.RESERVED and lease.state in LIVE_LEASE_STATES


@organization_role_required(ROLES_THAT_BOOK)
@require_POST
def lease_extend_view(request: AuthenticatedHttpRequest, lease_id: str) -> HttpResponse:
    """Move a reserved lease's end later; refusals come back as a message on the lease page."""
    lease = _lease(request, lease_id)
    form = ExtendForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors_text(form.errors.get_json_data()))
        return redirect("lease-detail", lease_id=lease.public_id)
    remember_zone(request, form.cleaned_data["tz"])
    try:
        lease_extend(user=request.user, lease=lease, end=form.cleaned_data["end"])
    except ValidationError as error:
        messages.error(request, "New end: " + " ".join(error.messages))
    except BookingRefused as refusal:
        messages.error(request, refusal.detail)
    else:
        messages.success(request, "The lease was extended.")
    return redirect("lease-detail", lease_id=lease.public_id)


def _errors_text(errors: dict[str, list[dict[str, str]]]) -> str:
    return " ".join(
        f"{'New end' if f == 'end' else f}: {e['message']}" for f, es in errors.items() for e in es
    )


@organization_role_required(ROLES_THAT_BOOK)
def lease_release_view(request: AuthenticatedHttpRequest, lease_id: str) -> HttpResponse:
    """GET: what releasing now would cost and save; POST: release (a scheduled lease is cancelled)."""
    lease = _lease(request, lease_id)
    if request.method == "POST":
        return _release(request, lease)
    now = timezone.now()
    context = {"lease": lease, "usage": lease_usage_until(lease, now), "now": now}
    return render_in_zone(request, "clusters/lease_release.html", context)


def _release(request: AuthenticatedHttpRequest, lease: Lease) -> HttpResponse:
    try:
        released = lease_release(user=request.user, lease=lease)
    except BookingRefused as refusal:
        messages.error(request, refusal.detail)
        return redirect("lease-detail", lease_id=lease.public_id)
    if released.state == LeaseState.CANCELLED:
        messages.success(request, "The lease was cancelled before its start; nothing is billed.")
    else:
        with timezone.override(viewer_zone(request)):
            at = timezone.localtime(released.end).strftime("%H:%M")
        messages.success(request, f"Released. Billing stopped at {at}; the nodes are being cleaned up.")
    return redirect("lease-detail", lease_id=lease.public_id)


@organization_role_required(ROLES_THAT_BOOK)
@require_POST
def lease_replace_view(request: AuthenticatedHttpRequest, lease_id: str) -> HttpResponse:
    """Book the replacement offered for a running lease on a failed node; go to the new lease."""
    lease = _lease(request, lease_id)
    try:
        replacement = lease_replacement_book(user=request.user, lease=lease)
    except BookingRefused as refusal:
        messages.error(request, refusal.detail)
        return redirect("lease-detail", lease_id=lease.public_id)
    messages.success(request, "The replacement is booked. Release the old lease once your work has moved.")
    return redirect("lease-detail", lease_id=replacement.public_id)


LEASES_PER_PAGE = 50


@staff_admin_required
def staff_leases(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every organization's leases, newest first, filtered and paginated."""
    form = LeaseFilterForm(request.GET or None)
    filters = form.filters() if request.GET else {}
    page = Paginator(leases_for_staff(**filters), LEASES_PER_PAGE).get_page(request.GET.get("page"))
    hosts = hostnames_of(page.object_list)
    rows = [(lease, hosts.get(lease.pk, [])) for lease in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "rows": rows, "query": query.urlencode()}
    return render(request, "staff/leases.html", context)
