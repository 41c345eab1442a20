"""The staff finance page: month closes, invoices by state, exports, revenue and utilization."""

from datetime import date
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.views.decorators import AuthenticatedHttpRequest, staff_finance_required
from billing.forms.finance import CloseMonthForm, InvoiceStateForm, PeriodForm, midnight
from billing.selectors.finance import (
    MonthStatus,
    invoice_status_counts,
    invoices_for_finance,
    month_statuses,
    months_between,
    past_months,
)
from billing.selectors.revenue import revenue_by_month, revenue_summary
from billing.services.invoicing import month_close
from billing.services.refusals import MonthNotOver
from core.charts import BarSeries, bar_chart
from core.forms import add_service_error
from core.periods import month_of, next_month, parse_month

MONTHS_SHOWN = 12


REVENUE_MONTHS = 6


INVOICES_PER_PAGE = 25


EXPORTS = [
    ("Invoices (CSV)", "api-export-invoices-csv"),
    ("Invoices (XLSX)", "api-export-invoices-xlsx"),
    ("Invoice lines (CSV)", "api-export-lines-csv"),
    ("Invoice lines (XLSX)", "api-export-lines-xlsx"),
    ("FOCUS cost and usage (CSV)", "api-export-focus"),
]


def _recent_months() -> list[MonthStatus]:
    return month_statuses(past_months(timezone.now(), MONTHS_SHOWN))


def _close_form(statuses: list[MonthStatus], data: object = None) -> CloseMonthForm:
    choices = [(f"{s.start:%Y-%m}", f"{s.start:%B %Y}{' (closed)' if s.close else ''}") for s in statuses]
    # The month to close is the latest one not closed yet, not simply the first of the list.
    open_month = next((f"{s.start:%Y-%m}" for s in statuses if s.close is None), None)
    return CloseMonthForm(data, months=choices, initial={"month": open_month} if open_month else None)


def _default_period() -> tuple[date, date]:
    """The last six months, this one included."""
    now = timezone.now()
    first = past_months(now, REVENUE_MONTHS - 1)[-1]
    return first.date(), next_month(month_of(now)).date()


def _revenue(period_from: date, period_to: date) -> dict[str, object]:
    start, end = midnight(period_from), min(midnight(period_to), timezone.now())
    rows = revenue_summary(start, end) if end > start else []
    months, regions, cells = revenue_by_month(rows, months_between(start, end))
    revenue = [BarSeries(r, [cells[m][r].revenue if r in cells[m] else 0 for m in months]) for r in regions]
    utilization = [
        BarSeries(r, [cells[m][r].utilization * 100 if r in cells[m] else 0 for m in months]) for r in regions
    ]
    return {
        "rows": rows,
        "revenue_chart": bar_chart(
            title="Revenue by month and region",
            description="Usage billed in USD per month, stacked by region; the table below has the numbers.",
            categories=months,
            series=revenue,
            y_label="USD",
        ),
        "utilization_chart": bar_chart(
            title="Fleet utilization by month and region",
            description="GPU-hours sold as a percentage of GPU-hours available, per region.",
            categories=months,
            series=utilization,
            y_label="% of GPU-hours",
            stacked=False,
        ),
    }


def _finance_page(
    request: AuthenticatedHttpRequest, close_form: CloseMonthForm | None = None, status: int = 200
) -> HttpResponse:
    period = PeriodForm(request.GET if "period_from" in request.GET else None)
    period_from, period_to = period.bounds(_default_period())
    if not period.is_bound:
        period = PeriodForm(initial={"period_from": period_from, "period_to": period_to})
    state = InvoiceStateForm(request.GET)
    wanted = state.cleaned_data.get("status", "") if state.is_valid() else ""
    page = Paginator(invoices_for_finance(wanted), INVOICES_PER_PAGE).get_page(request.GET.get("page"))
    query = urlencode({"period_from": period_from.isoformat(), "period_to": period_to.isoformat()})
    months = _recent_months()
    context = {
        "months": months,
        "close_form": close_form or _close_form(months),
        "status_counts": invoice_status_counts(),
        "state_form": state,
        "page": page,
        "page_query": urlencode({"status": wanted}) if wanted else "",
        "period_form": period,
        "period": (period_from, period_to),
        "exports": [(label, f"{reverse(name)}?{query}") for label, name in EXPORTS],
        **_revenue(period_from, period_to),
    }
    return render(request, "finance/finance.html", context, status=status)


@staff_finance_required
def finance(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Month close status, invoices by state, export downloads, and revenue and utilization."""
    return _finance_page(request)


@staff_finance_required
@require_POST
def finance_close_month(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Close a finished month: every organization with usage in it gets its invoice."""
    form = _close_form(_recent_months(), request.POST)
    if not form.is_valid():
        return _finance_page(request, form, status=400)
    try:
        result = month_close(period_start=parse_month(form.cleaned_data["month"]), actor=request.user)
    except MonthNotOver as error:
        add_service_error(form, error)
        return _finance_page(request, form, status=400)
    messages.success(
        request,
        f"{result.period_start:%B %Y} is closed: {result.invoices_created} invoice"
        f"{'s' if result.invoices_created != 1 else ''} created, {result.invoices_existing} already existed.",
    )
    return redirect("finance")
