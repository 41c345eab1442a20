"""Stripe, reached through its official SDK: customers and invoices, every create idempotent."""

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


def stripe_invoice_status(stripe_id: str, client: stripe.StripeClient) -> tuple[str | None, int | None]:
    """The invoice's status as Stripe has it now, and when it was paid (epoch seconds)."""
    fresh = client.v1.invoices.retrieve(stripe_id)
    transitions = fresh.get("status_transitions") or {}
    return fresh.status, transitions.get("paid_at")
