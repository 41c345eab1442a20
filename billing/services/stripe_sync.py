"""Pushing finalized invoices to Stripe and taking in Stripe's webhooks."""

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NoReturn

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.services.audit import audit_record
from billing.choices import InvoiceKind, InvoiceStatus
from billing.models import BillingAccount, Invoice, StripeEvent, TopUp
from billing.services.dunning import charge_refunds_apply, dispute_apply, invoice_apply_stripe_state
from billing.services.payments import auto_top_up_declined, checkout_apply, checkout_read
from billing.services.stripe_gateway import (
    WEBHOOK_TOLERANCE_SECONDS,
    charge_of,
    customer_id_for,
    dispute_of,
    payment_intent,
    stripe_client,
    stripe_credit_note_create,
    stripe_invoice_create,
    stripe_invoice_finalize,
    stripe_invoice_items_add,
    stripe_invoice_pay,
    stripe_invoice_status,
    stripe_invoice_void,
)
from billing.services.top_ups import top_up_record
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
        card = _card_on_file(invoice)
        if card:
            # On terms with a card: charged now; a decline comes back as invoice.payment_failed.
            stripe_invoice_pay(client, stripe_id, card, idempotency_key=f"vp-invoice-{invoice.public_id}-pay")
    invoice.refresh_from_db()
    return invoice


def _card_on_file(invoice: Invoice) -> str:
    account = BillingAccount.objects.filter(pk=invoice.organization_id).first()
    return account.card_payment_method if account else ""


def invoice_void_in_stripe(*, invoice: Invoice) -> None:
    """Void our voided invoice in Stripe too, so Stripe never shows it as payable."""
    if invoice.status == InvoiceStatus.VOID and invoice.stripe_invoice_id:
        status, _, _ = stripe_invoice_status(invoice.stripe_invoice_id, stripe_client())
        if status == "open":
            stripe_invoice_void(
                stripe_client(), invoice.stripe_invoice_id, f"vp-invoice-{invoice.public_id}-void"
            )


def credit_note_push_to_stripe(*, note: Invoice) -> Invoice:
    """A Stripe credit note for ours, on the Stripe invoice it corrects (once, by idempotency key)."""
    corrected = note.corrects
    if note.kind != InvoiceKind.CREDIT_NOTE or corrected is None or not corrected.stripe_invoice_id:
        return note
    if not note.stripe_credit_note_id:
        stripe_id = stripe_credit_note_create(
            stripe_client(),
            stripe_invoice_id=corrected.stripe_invoice_id,
            cents=int(note.total * 100),
            memo=f"{note.number}: {note.note}",
            idempotency_key=f"vp-credit-note-{note.public_id}",
        )
        Invoice.objects.filter(pk=note.pk).update(stripe_credit_note_id=stripe_id)
        audit_record(
            actor=None,
            action="credit_note.push_to_stripe",
            obj=note,
            organization=note.organization,
            after={"stripe_credit_note_id": stripe_id},
        )
    note.refresh_from_db()
    return note


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
    """Verify and apply one webhook; returns "processed", "duplicate" or "ignored".

    What changed is read again from Stripe first (events arrive late, out of order, or several
    times at once), outside our transaction; then the event's row and its effect are written in one
    transaction, so of five concurrent deliveries one applies and four find the row: "duplicate".
    """
    if not (settings.STRIPE_ENABLED and settings.STRIPE_WEBHOOK_SECRET):
        # Without a secret every signature check passes for a key anyone knows: refuse them all.
        raise WebhookRefused("Stripe is switched off here: no webhook is accepted.", code="stripe_off")
    event = _verified_event(payload, signature)
    event_id, kind, object_id = _event_fields(event)
    if StripeEvent.objects.filter(event_id=event_id).exists():
        return "duplicate"
    apply = _read_from_stripe(kind, object_id)
    try:
        return _record_and_apply(event_id, kind, object_id, apply)
    except IntegrityError:
        if StripeEvent.objects.filter(event_id=event_id).exists():
            return "duplicate"
        raise


Apply = Callable[[str], str] | None


def _read_from_stripe(kind: str, object_id: str) -> Apply:
    """What the event's object is now in Stripe, as the change to apply (None: nothing to do)."""
    if not object_id:
        return None
    reader = _invoice_reader(kind) if kind.startswith("invoice.") else READERS.get(kind)
    if reader is None:
        return None
    try:
        return reader(object_id)
    except stripe.InvalidRequestError:
        # Stripe's answer for an id it does not know (404) or cannot read as one (400).
        what = "invoice" if kind.startswith("invoice.") else "object"
        raise WebhookRefused(
            f"data.object.id: Stripe has no {what} {object_id[:100]!r}.",
            code=f"unknown_{what}",
            fields={"data.object.id": [f"Stripe has no {what} with this id."]},
        ) from None
    except stripe.StripeError:
        # Stripe retries a delivery that failed: the answer says to try again later.
        raise Refused(
            "Stripe could not be reached to confirm the event; deliver again later.",
            code="stripe_unavailable",
            status=503,
        ) from None


def _checkout_reader(session_id: str) -> Apply:
    outcome = checkout_read(session_id=session_id)
    if outcome is None:
        return None

    def apply(event_id: str) -> str:
        checkout_apply(outcome)
        return "processed"

    return apply


def _intent_reader(intent_id: str) -> Apply:
    top_up = TopUp.objects.filter(stripe_payment_intent=intent_id).first()
    if top_up is None:
        return None  # a Checkout payment's intent: its session's event credits it
    intent = payment_intent(stripe_client(), intent_id)

    def apply(event_id: str) -> str:
        if intent.get("status") == "succeeded":
            top_up_record(
                organization=top_up.organization_id,
                amount=Decimal(int(intent.get("amount_received") or intent.get("amount") or 0)) / 100,
                external_id=f"payment_intent:{intent['id']}",
                description=f"Automatic top-up by card ({intent['id']})",
                top_up=top_up,
            )
        elif intent.get("status") in ("requires_payment_method", "canceled"):
            reason = (intent.get("last_payment_error") or {}).get("message") or "The card was declined."
            auto_top_up_declined(top_up=top_up, reason=reason)
        return "processed"

    return apply


def _invoice_reader(kind: str) -> Callable[[str], Apply]:
    def read(stripe_id: str) -> Apply:
        if not Invoice.objects.filter(stripe_invoice_id=stripe_id).exists():
            _stripe_invoice_known(stripe_id)
            return None
        status, paid_at, amount_paid = stripe_invoice_status(stripe_id, stripe_client())

        def apply(event_id: str) -> str:
            return invoice_apply_stripe_state(
                stripe_id=stripe_id,
                status=status,
                paid_at=paid_at,
                amount_paid=amount_paid,
                failed=kind == "invoice.payment_failed",
                event_id=event_id,
            )

        return apply

    return read


def _stripe_invoice_known(stripe_id: str) -> None:
    """Raise (through Stripe's 404) for an invoice Stripe does not know; one it knows is not ours."""
    stripe_invoice_status(stripe_id, stripe_client())


def _refund_reader(charge_id: str) -> Apply:
    charge = charge_of(stripe_client(), charge_id)
    return lambda event_id: charge_refunds_apply(charge=charge)


def _dispute_reader(dispute_id: str) -> Apply:
    dispute = dispute_of(stripe_client(), dispute_id)
    return lambda event_id: dispute_apply(dispute=dispute)


READERS: dict[str, Callable[[str], Apply]] = {
    "checkout.session.completed": _checkout_reader,
    "payment_intent.succeeded": _intent_reader,
    "payment_intent.payment_failed": _intent_reader,
    "charge.refunded": _refund_reader,
    "charge.dispute.created": _dispute_reader,
    "charge.dispute.closed": _dispute_reader,
}


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


@transaction.atomic
def _record_and_apply(event_id: str, kind: str, object_id: str, apply: Apply) -> str:
    # Inserted first: a concurrent delivery of the same event waits here on the unique index,
    # then fails (IntegrityError, answered "duplicate") once this transaction commits.
    StripeEvent.objects.create(event_id=event_id, type=kind, object_id=object_id)
    if apply is None:
        return "ignored"
    return apply(event_id)
