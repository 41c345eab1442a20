"""Helpers of the billing tests: Stripe webhook events delivered to our endpoint, and what FOCUS 1.2
requires of an export. Leases and health events to bill are made by tests/billing/factories.py."""

import time

from tests.billing.stripe_server import signed_event

WEBHOOK = "/api/v1/stripe/webhook/"
FOCUS_REQUIRED = {
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
}


def event(kind: str, invoice_id: str, event_id: str | None = None) -> dict:
    """A Stripe event of `kind` about an invoice, as Stripe sends it (the state is re-read from Stripe)."""
    return {
        "id": event_id or f"evt_{kind.replace('.', '_')}_{time.time_ns()}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": {"id": invoice_id, "object": "invoice"}},
    }


def deliver(client, payload: dict, secret: str = "whsec_test_voltpark", timestamp: int | None = None):
    """Our webhook's answer to `payload` signed with `secret` at `timestamp` (now by default)."""
    body, header = signed_event(payload, secret, timestamp)
    return client.post(WEBHOOK, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
