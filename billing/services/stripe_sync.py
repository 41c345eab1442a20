"""Pushing finalized invoices to Stripe and taking in Stripe's webhooks."""

from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction

from accounts.services.audit import audit_record
from billing.choices import InvoiceKind, InvoiceStatus
from billing.models import Invoice, StripeEvent
from billing.services.invoicing import invoice_mark_paid, invoice_void
from billing.services.stripe_gateway import (
    WEBHOOK_TOLERANCE_SECONDS,
    customer_id_for,
    stripe_client,
    stripe_invoice_create,
    stripe_invoice_finalize,
    stripe_invoice_items_add,
    stripe_invoice_status,
)
from core.refusals import Refused


class WebhookRefused(Refused):
    """A webhook that is not from Stripe, or too old to trust."""

    status = 400


def invoice_push_to_stripe(*, invoice: Invoice) -> Invoice:
    """Create the finalized invoice in Stripe with its items and finalize it there; safe to repeat.

    Stripe calls happen outside our transactions; each create carries an idempotency key derived
    from our ids, so a retried push after a crash creates nothing twice.
    """
    if invoice.kind != InvoiceKind.INVOICE or invoice.status != InvoiceStatus.OPEN or invoice.total <= 0:
        return invoice
    client = stripe_client()
    customer_id = customer_id_for(invoice.organization, client)
    stripe_id = invoice.stripe_invoice_id or stripe_invoice_create(invoice, customer_id, client)
    Invoice.objects.filter(pk=invoice.pk, stripe_invoice_id__isnull=True).update(stripe_invoice_id=stripe_id)
    if not invoice.stripe_hosted_url:
        stripe_invoice_items_add(invoice, customer_id, stripe_id, client)
        url = stripe_invoice_finalize(invoice, stripe_id, client)
        _record_push(invoice, stripe_id, url)
    invoice.refresh_from_db()
    return invoice


@transaction.atomic
def _record_push(invoice: Invoice, stripe_id: str, url: str) -> None:
    Invoice.objects.filter(pk=invoice.pk).update(stripe_hosted_url=url)
    audit_record(
        actor=None,
        action="invoice.push_to_stripe",
        obj=invoice,
        organization=invoice.organization,
        after={"stripe_invoice_id": stripe_id},
    )


def stripe_webhook_receive(*, payload: bytes, signature: str) -> str:
    """Verify and apply one webhook; returns "processed", "duplicate" or "ignored"."""
    event = _verified_event(payload, signature)
    if StripeEvent.objects.filter(event_id=event["id"]).exists():
        return "duplicate"
    obj = event["data"]["object"]
    state = None
    if event["type"].startswith("invoice.") and obj.get("id"):
        # Events can arrive late or out of order: the invoice's state is read again from Stripe.
        state = stripe_invoice_status(obj["id"], stripe_client())
    return _record_and_apply(event, obj.get("id", ""), state)


def _verified_event(payload: bytes, signature: str) -> Any:
    try:
        return stripe.Webhook.construct_event(
            payload, signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except ValueError:
        raise WebhookRefused("The webhook body is not valid JSON.", code="bad_payload") from None
    except stripe.SignatureVerificationError as error:
        if "tolerance" in str(error):
            raise WebhookRefused("The webhook's timestamp is too old.", code="stale_signature") from None
        raise WebhookRefused("The webhook's signature does not match.", code="bad_signature") from None


@transaction.atomic
def _record_and_apply(event: Any, object_id: str, state: tuple[str | None, int | None] | None) -> str:
    _, created = StripeEvent.objects.get_or_create(
        event_id=event["id"], defaults={"type": event["type"], "object_id": object_id}
    )
    if not created:
        return "duplicate"
    # Locked: two events about one invoice (paid, then paid again under another id) racing here
    # must see each other's change, not both find it open.
    invoice = (
        Invoice.objects.select_for_update().filter(stripe_invoice_id=object_id).first() if object_id else None
    )
    if invoice is None or state is None:
        return "ignored"
    status, paid_at = state
    if status == "paid" and invoice.status == InvoiceStatus.OPEN:
        when = datetime.fromtimestamp(paid_at, tz=UTC) if paid_at else None
        invoice_mark_paid(actor=None, invoice=invoice, paid_at=when, via=f"stripe:{event['id']}")
    elif status == "void" and invoice.status == InvoiceStatus.OPEN:
        invoice_void(actor=None, invoice=invoice, reason="Voided in Stripe", via=f"stripe:{event['id']}")
    return "processed"
