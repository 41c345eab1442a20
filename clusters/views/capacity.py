"""The staff capacity page: committed GPUs per day, pool utilization, unmet demand, the queue, and
each region's early-stage share (previewed, then applied)."""

from datetime import UTC, date, datetime, time

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from accounts.views.decorators import AuthenticatedHttpRequest, staff_admin_required
from clusters.choices import Pool
from clusters.forms.capacity import PoolShareForm
from clusters.models import PoolShare
from clusters.selectors.demand import (
    PoolDays,
    committed_per_day,
    pool_utilization,
    queue_depth,
    unmet_demand,
)
from clusters.services.pools import SharePreview, pool_share_preview, pool_share_set
from core.charts import Series, line_chart


def _chart(pools: list[PoolDays]) -> SafeString:
    region = pools[0].region
    series = [
        Series(f"{Pool(p.pool).label} (of {p.gpus} GPUs)", [(day_start(d), v) for d, v in p.committed])
        for p in pools
    ]
    return line_chart(
        title=f"GPUs committed per day in {region.code}",
        description=f"Average GPUs committed each UTC day over the next {len(pools[0].committed)} days, "
        f"per pool, in {region.name}.",
        series=series,
        y_label="GPUs",
        width=640,
        height=220,
    )


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _page(
    request: AuthenticatedHttpRequest,
    form: PoolShareForm | None = None,
    preview: SharePreview | None = None,
    status: int = 200,
) -> HttpResponse:
    committed = committed_per_day()
    by_region: dict[str, list[PoolDays]] = {}
    for pool_days in committed:
        by_region.setdefault(pool_days.region.code, []).append(pool_days)
    regions, unmet = unmet_demand()
    shares = {s.region_id: s for s in PoolShare.objects.all()}
    context = {
        "charts": [(code, pools, _chart(pools)) for code, pools in by_region.items()],
        "utilization": pool_utilization(),
        "unmet_regions": regions,
        "unmet": unmet,
        "queue": queue_depth(),
        "shares": [(pools[0].region, shares.get(pools[0].region.pk)) for pools in by_region.values()],
        "form": form or PoolShareForm(),
        "preview": preview,
    }
    return render(request, "staff/capacity.html", context, status=status)


@staff_admin_required
def capacity(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Committed GPUs for 90 days, utilization, unmet demand, the queue, and the pool shares."""
    return _page(request)


@staff_admin_required
@require_POST
def capacity_share(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Preview a region's early-stage share (what moves now, what waits), or apply it."""
    form = PoolShareForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    region, share = form.cleaned_data["region"], form.share
    if not form.cleaned_data["apply"]:
        preview = pool_share_preview(region=region, share=share)
        confirm = PoolShareForm(
            initial={"region": region, "percent": form.cleaned_data["percent"], "apply": True}
        )
        return _page(request, confirm, preview)
    moved = pool_share_set(region=region, share=share, actor=request.user)
    messages.success(
        request,
        f"{region.code}: the early-stage share is {share:.1%}; {len(moved)} node(s) moved now, "
        "the others move as their bookings end.",
    )
    return redirect("staff-capacity")
