"""Celery tasks of billing: thin wrappers over the services, taking ids, safe to run twice."""

from datetime import timedelta

import stripe
from celery import shared_task
from django.utils import timezone

from billing.models import Invoice
from billing.services import payments, stripe_sync
from billing.services.credits import credits_expire as credits_expire_service
from billing.services.debits import usage_debit as usage_debit_service
from billing.services.documents import invoice_pdf_render
from billing.services.dunning import dunning_sweep as dunning_sweep_service
from billing.services.invoicing import month_close
from billing.services.metering import usage_meter
from billing.services.runway import balances_watch as balances_watch_service
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
def invoice_render_pdfs(invoice_ids: list[int]) -> None:
    """Render the PDFs of a batch of finalized invoices (one message per batch, not per invoice)."""
    for invoice in Invoice.objects.filter(pk__in=invoice_ids).order_by("pk"):
        invoice_pdf_render(invoice=invoice)


@shared_task(
    autoretry_for=(stripe.APIConnectionError, stripe.RateLimitError),
    retry_backoff=True,
    max_retries=8,
)
def invoice_push_to_stripe(invoice_id: int) -> None:
    push(invoice=Invoice.objects.get(pk=invoice_id))


@shared_task
def usage_debit() -> None:
    """Debit on-demand usage so far from the balances (a re-run debits nothing new)."""
    usage_debit_service()


@shared_task
def balances_watch() -> None:
    """Low-balance and runway warnings, automatic top-ups, releases when money has run out."""
    balances_watch_service()


@shared_task
def credits_expire() -> None:
    """Take expired grants' unspent credit out of the balances."""
    credits_expire_service()


STRIPE_TRANSIENT = (stripe.APIConnectionError, stripe.RateLimitError)


@shared_task(autoretry_for=STRIPE_TRANSIENT, retry_backoff=True, max_retries=8)
def invoice_void_in_stripe(invoice_id: int) -> None:
    stripe_sync.invoice_void_in_stripe(invoice=Invoice.objects.get(pk=invoice_id))


@shared_task(autoretry_for=STRIPE_TRANSIENT, retry_backoff=True, max_retries=8)
def credit_note_push_to_stripe(invoice_id: int) -> None:
    stripe_sync.credit_note_push_to_stripe(note=Invoice.objects.get(pk=invoice_id))


@shared_task(autoretry_for=STRIPE_TRANSIENT, retry_backoff=True, max_retries=5)
def auto_top_up(organization_id: int) -> None:
    """Charge the saved card for the owner's automatic top-up (one attempt per call, keyed by attempt)."""
    payments.auto_top_up(organization_id=organization_id)


@shared_task
def dunning_sweep() -> None:
    """Invoice reminders around the due date; suspension when too long overdue."""
    dunning_sweep_service()
