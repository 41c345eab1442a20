"""The periodic billing jobs: beat runs them, and each is safe to run twice."""

from datetime import UTC, datetime, timedelta

from celery.schedules import crontab
from django.conf import settings
from django.utils import timezone

from billing import tasks
from billing.models import Invoice, InvoicePdf, UsageHour
from core.periods import floor_hour, previous_month
from tests.billing.factories import make_lease


def test_beat_meters_every_hour_and_closes_the_month_on_the_first() -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE
    hourly = schedule["billing-meter-recent-hours"]
    monthly = schedule["billing-close-previous-month"]
    assert hourly["task"] == "billing.tasks.meter_recent_hours" and hourly["schedule"] == crontab(minute=5)
    assert monthly["task"] == "billing.tasks.close_previous_month"
    assert monthly["schedule"] == crontab(minute=30, hour=0, day_of_month=1)


def test_the_hourly_job_meters_the_last_hour_and_the_current_one(acme) -> None:
    now = timezone.now()
    lease = make_lease(organization=acme, start=floor_hour(now) - timedelta(hours=3), end=None)
    tasks.meter_recent_hours()
    tasks.meter_recent_hours()
    hours = list(UsageHour.objects.filter(lease=lease).order_by("hour").values_list("hour", "gpu_seconds"))
    assert [hour for hour, _ in hours] == [floor_hour(now) - timedelta(hours=1), floor_hour(now)]
    assert hours[0][1] == 3600


def test_the_monthly_job_invoices_last_month_once_and_renders_the_pdfs(acme) -> None:
    start = previous_month()
    make_lease(organization=acme, start=start, end=start + timedelta(hours=2))
    assert tasks.close_previous_month() == 1
    assert tasks.close_previous_month() == 0
    invoice = Invoice.objects.get()
    tasks.invoice_render_pdfs([invoice.pk])
    tasks.invoice_render_pdfs([invoice.pk])
    assert invoice.period_start == start and InvoicePdf.objects.filter(invoice=invoice).count() == 1
    assert bytes(InvoicePdf.objects.get().content).startswith(b"%PDF")


def test_previous_month_wraps_the_year() -> None:
    assert previous_month(datetime(2027, 1, 1, 0, 30, tzinfo=UTC)) == datetime(2026, 12, 1, tzinfo=UTC)
