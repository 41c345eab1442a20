"""Celery tasks of billing: thin wrappers over the services, taking ids, safe to run twice."""

from datetime import timedelta

import stripe
from celery import shared_task
from django.utils import timezone

from billing.models import Invoice
from billing.services.documents import invoice_pdf_render
from billing.services.invoicing import month_close
from billing.services.metering import usage_meter
from billing.services.stripe_sync import invoice_push_to_stripe as push
from core.periods import floor_hour, previous_month


@shared_task
def meter_recent_hours() -> int:
    """Meter the previous clock hour (now complete) and the current one (so far)."""
    now = timezone.now()
    return usage_meter(start=floor_hour(now) - timedelta(hours=1), end=now, now=now).written


@shared_task
def close_previous_month() -> int:
    """On the 1st: invoice last month; a second run creates nothing."""
    return month_close(period_start=previous_month()).invoices_created


@shared_task
def invoice_render_pdf(invoice_id: int) -> None:
    invoice_pdf_render(invoice=Invoice.objects.get(pk=invoice_id))


@shared_task(
    autoretry_for=(stripe.APIConnectionError, stripe.RateLimitError),
    retry_backoff=True,
    max_retries=8,
)
def invoice_push_to_stripe(invoice_id: int) -> None:
    push(invoice=Invoice.objects.get(pk=invoice_id))
