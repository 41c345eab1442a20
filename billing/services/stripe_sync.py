"""Pushing finalized invoices to Stripe and taking in Stripe's webhooks."""

import json
import time
from datetime import UTC, datetime
from typing import Any, NoReturn

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

# The length of StripeEvent's id, type and object id columns; Stripe's own ids are far shorter.
STRIPE_ID_MAX_LENGTH = 100


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
    if not (settings.STRIPE_ENABLED and settings.STRIPE_WEBHOOK_SECRET):
        # Without a secret every signature check passes for a key anyone knows: refuse them all.
        raise WebhookRefused("Stripe is switched off here: no webhook is accepted.", code="stripe_off")
    event = _verified_event(payload, signature)
    event_id, kind, object_id = _event_fields(event)
    if StripeEvent.objects.filter(event_id=event_id).exists():
        return "duplicate"
    state = None
    if kind.startswith("invoice.") and object_id:
        # Events can arrive late or out of order: the invoice's state is read again from Stripe.
        state = _stripe_invoice_state(object_id)
    return _record_and_apply(event_id, kind, object_id, state)


def _verified_event(payload: bytes, signature: str) -> dict[str, Any]:
    """The event once its signature holds; read as plain JSON (the SDK's reader fails on a list)."""
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(
            text, signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except UnicodeDecodeError:
        raise WebhookRefused("The webhook body is not UTF-8 text.", code="bad_payload") from None
    except stripe.SignatureVerificationError as error:
        if "tolerance" in str(error):
            raise WebhookRefused("The webhook's timestamp is too old.", code="stale_signature") from None
        raise WebhookRefused("The webhook's signature does not match.", code="bad_signature") from None
    # The SDK refuses only timestamps too far in the past; one from the future is as suspect.
    if _signed_at(signature) > time.time() + WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookRefused("The webhook's timestamp is in the future.", code="future_signature")
    try:
        event = json.loads(text)
    except ValueError:
        raise WebhookRefused("The webhook body is not valid JSON.", code="bad_payload") from None
    if not isinstance(event, dict):
        _refuse_field("data.object", "The body is not a Stripe event object.")
    return event


def _signed_at(signature: str) -> int:
    """The first `t=` of a Stripe-Signature header, the one the SDK verified (so it is a number)."""
    return next(
        int(value) for key, _, value in (p.partition("=") for p in signature.split(",")) if key == "t"
    )


def _event_fields(event: dict[str, Any]) -> tuple[str, str, str]:
    """The event's id, type and object's id ("" for none); a signed body of another shape is refused,
    naming the field, rather than stored half-read."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        _refuse_field("data.object", "Missing or not an object.")
    object_id = obj.get("id", "")
    for name, value, required in (
        ("id", event.get("id"), True),
        ("type", event.get("type"), True),
        ("data.object.id", object_id, False),
    ):
        if not isinstance(value, str) or (required and not value) or len(value) > STRIPE_ID_MAX_LENGTH:
            _refuse_field(name, f"Missing, not text, or over {STRIPE_ID_MAX_LENGTH} characters.")
    return event["id"], event["type"], object_id


def _refuse_field(name: str, problem: str) -> NoReturn:
    raise WebhookRefused(f"{name}: {problem}", code="bad_payload", fields={name: [problem]})


def _stripe_invoice_state(stripe_id: str) -> tuple[str | None, int | None]:
    try:
        return stripe_invoice_status(stripe_id, stripe_client())
    except stripe.InvalidRequestError:
        # Stripe's answer for an id it does not know (404) or cannot read as one (400).
        raise WebhookRefused(
            f"data.object.id: Stripe has no invoice {stripe_id[:100]!r}.",
            code="unknown_invoice",
            fields={"data.object.id": ["Stripe has no invoice with this id."]},
        ) from None
    except stripe.StripeError:
        # Stripe retries a delivery that failed: the answer says to try again later.
        raise Refused(
            "Stripe could not be reached to confirm the invoice; deliver again later.",
            code="stripe_unavailable",
            status=503,
        ) from None


@transaction.atomic
def _record_and_apply(
    event_id: str, kind: str, object_id: str, state: tuple[str | None, int | None] | None
) -> str:
    _, created = StripeEvent.objects.get_or_create(
        event_id=event_id, defaults={"type": kind, "object_id": object_id}
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
        invoice_mark_paid(actor=None, invoice=invoice, paid_at=when, via=f"stripe:{event_id}")
    elif status == "void" and invoice.status == InvoiceStatus.OPEN:
        invoice_void(actor=None, invoice=invoice, reason="Voided in Stripe", via=f"stripe:{event_id}")
    return "processed"
