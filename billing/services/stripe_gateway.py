"""Stripe, reached through its official SDK: customers and invoices, every create idempotent."""

from typing import Any

import stripe
from django.conf import settings
from stripe._base_address import BaseAddresses

from accounts.models import Organization
from billing.models import Invoice, StripeCustomer

# Stripe webhooks older than this are refused, so a captured request cannot be replayed later.
WEBHOOK_TOLERANCE_SECONDS = 300


def stripe_client() -> stripe.StripeClient:
    """A client for Stripe, or for the Stripe-compatible server named by STRIPE_API_BASE."""
    base: BaseAddresses | None = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses=base, max_network_retries=2)


def customer_id_for(organization: Organization, client: stripe.StripeClient) -> str:
    """The organization's Stripe customer, created once (the idempotency key makes a retry safe)."""
    known = StripeCustomer.objects.filter(organization=organization).first()
    if known is not None:
        return known.stripe_id
    customer = client.v1.customers.create(
        {
            "name": organization.name,
            "email": organization.billing_email,
            "metadata": {"voltpark_organization": str(organization.public_id)},
        },
        {"idempotency_key": f"vp-customer-{organization.public_id}"},
    )
    StripeCustomer.objects.bulk_create(
        [StripeCustomer(organization=organization, stripe_id=customer.id)], ignore_conflicts=True
    )
    return StripeCustomer.objects.get(organization=organization).stripe_id


def stripe_invoice_create(invoice: Invoice, customer_id: str, client: stripe.StripeClient) -> str:
    """A Stripe invoice for ours, paid by card on Stripe's hosted page; returns its id."""
    created = client.v1.invoices.create(
        {
            "customer": customer_id,
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "auto_advance": False,
            "currency": invoice.currency.lower(),
            "pending_invoice_items_behavior": "exclude",
            "metadata": {"voltpark_invoice": str(invoice.public_id), "number": invoice.number or ""},
        },
        {"idempotency_key": f"vp-invoice-{invoice.public_id}"},
    )
    return created.id


def stripe_invoice_items_add(
    invoice: Invoice, customer_id: str, stripe_id: str, client: stripe.StripeClient
) -> None:
    """One Stripe invoice item per line of ours, in cents (credits are negative items)."""
    for line in invoice.lines.order_by("position"):
        client.v1.invoice_items.create(
            {
                "customer": customer_id,
                "invoice": stripe_id,
                "amount": int(line.amount * 100),
                "currency": invoice.currency.lower(),
                "description": line.description,
            },
            {"idempotency_key": f"vp-invoice-{invoice.public_id}-line-{line.position}"},
        )


def stripe_invoice_finalize(invoice: Invoice, stripe_id: str, client: stripe.StripeClient) -> str:
    """Finalize the Stripe invoice; returns the hosted page where the customer pays by card."""
    finalized = client.v1.invoices.finalize_invoice(
        stripe_id, options={"idempotency_key": f"vp-invoice-{invoice.public_id}-finalize"}
    )
    return finalized.hosted_invoice_url or ""


def stripe_invoice_status(stripe_id: str, client: stripe.StripeClient) -> tuple[str | None, int | None, int]:
    """The invoice's status as Stripe has it now, when it was paid (epoch seconds), and cents paid."""
    fresh = client.v1.invoices.retrieve(stripe_id)
    transitions = fresh.get("status_transitions") or {}
    return fresh.status, transitions.get("paid_at"), int(fresh.get("amount_paid") or 0)


def checkout_session_create(
    client: stripe.StripeClient, params: dict[str, Any], idempotency_key: str
) -> tuple[str, str]:
    """A Stripe Checkout session (setup or payment mode); its id and the hosted page's URL."""
    session = client.v1.checkout.sessions.create(params, {"idempotency_key": idempotency_key})  # type: ignore[arg-type]
    return session.id, session.url or ""


def checkout_session(client: stripe.StripeClient, session_id: str) -> dict[str, Any]:
    """The session as Stripe has it now (status, payment status, its intent and amount)."""
    return client.v1.checkout.sessions.retrieve(session_id).to_dict()


def setup_intent_payment_method(client: stripe.StripeClient, setup_intent_id: str) -> str:
    return str(client.v1.setup_intents.retrieve(setup_intent_id).payment_method or "")


def payment_intent(client: stripe.StripeClient, intent_id: str) -> dict[str, Any]:
    return client.v1.payment_intents.retrieve(intent_id).to_dict()


def card_of(client: stripe.StripeClient, payment_method_id: str) -> dict[str, Any]:
    """What the page shows of a card: brand, last four digits, expiry."""
    card = client.v1.payment_methods.retrieve(payment_method_id).to_dict().get("card") or {}
    return {
        "brand": str(card.get("brand") or "card")[:20],
        "last4": str(card.get("last4") or "")[:4],
        "exp_month": card.get("exp_month"),
        "exp_year": card.get("exp_year"),
    }


def customer_default_payment_method(
    client: stripe.StripeClient, customer_id: str, payment_method_id: str
) -> None:
    """Make the card the customer's default, so invoices are charged to it."""
    client.v1.customers.update(
        customer_id, {"invoice_settings": {"default_payment_method": payment_method_id}}
    )


def off_session_charge(
    client: stripe.StripeClient,
    *,
    customer_id: str,
    payment_method_id: str,
    cents: int,
    metadata: dict[str, str],
    idempotency_key: str,
) -> dict[str, Any]:
    """Charge the saved card with nobody present; Stripe's answer (a decline is an answer, not an error)."""
    try:
        intent = client.v1.payment_intents.create(
            {
                "amount": cents,
                "currency": "usd",
                "customer": customer_id,
                "payment_method": payment_method_id,
                "off_session": True,
                "confirm": True,
                "metadata": metadata,
            },
            {"idempotency_key": idempotency_key},
        )
    except stripe.CardError as declined:
        return {"id": None, "status": "failed", "error": declined.user_message or str(declined)}
    found = intent.to_dict()
    last_error = found.get("last_payment_error") or {}
    return {"id": found["id"], "status": found["status"], "error": last_error.get("message", "")}


def stripe_invoice_void(client: stripe.StripeClient, stripe_id: str, idempotency_key: str) -> None:
    client.v1.invoices.void_invoice(stripe_id, options={"idempotency_key": idempotency_key})


def stripe_credit_note_create(
    client: stripe.StripeClient, *, stripe_invoice_id: str, cents: int, memo: str, idempotency_key: str
) -> str:
    """A Stripe credit note on the invoice for `cents`; its id."""
    note = client.v1.credit_notes.create(
        {"invoice": stripe_invoice_id, "amount": cents, "memo": memo[:500]},
        {"idempotency_key": idempotency_key},
    )
    return note.id


def charge_of(client: stripe.StripeClient, charge_id: str) -> dict[str, Any]:
    """A charge with its refunds and its customer, as Stripe has it now."""
    charge = client.v1.charges.retrieve(charge_id).to_dict()
    refunds = client.v1.refunds.list({"charge": charge_id, "limit": 100}).to_dict()
    charge["refund_list"] = refunds.get("data", [])
    return charge


def dispute_of(client: stripe.StripeClient, dispute_id: str) -> dict[str, Any]:
    """A dispute (status, amount) and the customer of its charge."""
    dispute = client.v1.disputes.retrieve(dispute_id).to_dict()
    charge = client.v1.charges.retrieve(str(dispute.get("charge") or "")).to_dict()
    dispute["customer"] = charge.get("customer")
    return dispute


def stripe_invoice_pay(
    client: stripe.StripeClient, stripe_id: str, payment_method: str, idempotency_key: str
) -> None:
    """Charge the invoice to the card on file now; a decline is reported by webhook, not raised."""
    try:
        client.v1.invoices.pay(
            stripe_id,
            {"payment_method": payment_method, "off_session": True},
            {"idempotency_key": idempotency_key},
        )
    except stripe.CardError:
        return
