"""Stripe through the official SDK against a server on loopback: push, webhooks, replays, order."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import AuditEntry
from billing.choices import InvoiceStatus
from billing.models import Invoice, StripeCustomer, StripeEvent
from billing.services.invoicing import month_close
from billing.services.stripe_sync import invoice_push_to_stripe
from tests.billing.factories import make_lease
from tests.billing.helpers import WEBHOOK, deliver, event

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def close(month: datetime, capture) -> None:
    with capture(execute=True):
        month_close(period_start=month, now=datetime(2026, 5, 2, tzinfo=UTC))


@pytest.fixture
def pushed(stripe, acme, django_capture_on_commit_callbacks) -> Invoice:
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=10), gpus=8, price="1.9900")
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(minutes=30), gpus=1)
    close(MARCH, django_capture_on_commit_callbacks)
    return Invoice.objects.get()


def test_finalizing_pushes_a_customer_and_an_invoice_with_its_items(pushed, stripe, acme) -> None:
    remote = stripe.invoices[pushed.stripe_invoice_id]
    assert remote["customer"] == StripeCustomer.objects.get(organization=acme).stripe_id
    assert stripe.customers() == [f"customer:{remote['customer']}"]
    assert [item["amount"] for item in remote["lines"]["data"]] == [15920, 100]
    assert remote["total"] == int(pushed.total * 100) and remote["status"] == "open"
    assert remote["collection_method"] == "send_invoice"
    assert remote["metadata"]["voltpark_invoice"] == str(pushed.public_id)
    assert pushed.stripe_hosted_url == remote["hosted_invoice_url"] and pushed.status == InvoiceStatus.OPEN


def test_every_create_carries_an_idempotency_key(pushed, stripe) -> None:
    keys = dict((key, path) for path, key in stripe.idempotency_keys)
    invoice = pushed.public_id
    assert keys == {
        f"vp-customer-{pushed.organization.public_id}": "/v1/customers",
        f"vp-invoice-{invoice}": "/v1/invoices",
        f"vp-invoice-{invoice}-line-1": "/v1/invoiceitems",
        f"vp-invoice-{invoice}-line-2": "/v1/invoiceitems",
        f"vp-invoice-{invoice}-finalize": f"/v1/invoices/{pushed.stripe_invoice_id}/finalize",
    }


def test_a_push_retried_after_a_crash_creates_nothing_twice(pushed, stripe) -> None:
    # As if the worker died after Stripe answered but before we stored anything.
    Invoice.objects.filter(pk=pushed.pk).update(stripe_invoice_id=None, stripe_hosted_url="")
    StripeCustomer.objects.all().delete()
    again = invoice_push_to_stripe(invoice=Invoice.objects.get(pk=pushed.pk))
    assert again.stripe_invoice_id == pushed.stripe_invoice_id
    assert len(stripe.invoices) == 1 and len(stripe.customers()) == 1
    assert len(stripe.invoices[pushed.stripe_invoice_id]["lines"]["data"]) == 2


def test_one_customer_per_organization(pushed, stripe, acme, django_capture_on_commit_callbacks) -> None:
    make_lease(organization=acme, start=APRIL, end=APRIL + timedelta(hours=1))
    close(APRIL, django_capture_on_commit_callbacks)
    assert len(stripe.invoices) == 2 and len(stripe.customers()) == 1
    assert StripeCustomer.objects.count() == 1


def test_nothing_goes_to_stripe_when_it_is_switched_off(
    stripe, settings, acme, django_capture_on_commit_callbacks
) -> None:
    settings.STRIPE_ENABLED = False
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=1))
    close(MARCH, django_capture_on_commit_callbacks)
    assert stripe.invoices == {} and Invoice.objects.get().stripe_invoice_id is None


def test_a_paid_webhook_marks_the_invoice_paid(pushed, stripe, client) -> None:
    stripe.pay(pushed.stripe_invoice_id)
    response = deliver(client, event("invoice.paid", pushed.stripe_invoice_id, "evt_paid_1"))
    assert response.status_code == 200 and response.json() == {"status": "processed"}
    pushed.refresh_from_db()
    assert pushed.status == InvoiceStatus.PAID and pushed.paid_at is not None
    assert StripeEvent.objects.get().event_id == "evt_paid_1"
    assert AuditEntry.objects.get(action="invoice.paid").after["via"] == "stripe:evt_paid_1"


def test_a_bad_signature_is_refused_with_400(pushed, stripe, client) -> None:
    stripe.pay(pushed.stripe_invoice_id)
    response = deliver(client, event("invoice.paid", pushed.stripe_invoice_id), secret="whsec_someone_else")
    assert response.status_code == 400 and response.json()["code"] == "bad_signature"
    garbage = client.post(
        WEBHOOK, data=b"{}", content_type="application/json", HTTP_STRIPE_SIGNATURE="nonsense"
    )
    assert garbage.status_code == 400
    assert not StripeEvent.objects.exists() and Invoice.objects.get().status == InvoiceStatus.OPEN


def test_a_stale_timestamp_is_refused_with_400(pushed, stripe, client) -> None:
    stripe.pay(pushed.stripe_invoice_id)
    old = int(time.time()) - 301
    response = deliver(client, event("invoice.paid", pushed.stripe_invoice_id), timestamp=old)
    assert response.status_code == 400 and response.json()["code"] == "stale_signature"
    assert not StripeEvent.objects.exists() and Invoice.objects.get().status == InvoiceStatus.OPEN


def test_a_replayed_event_does_nothing(pushed, stripe, client, frank) -> None:
    from billing.services.invoicing import credit_note_create

    stripe.pay(pushed.stripe_invoice_id)
    paid = event("invoice.paid", pushed.stripe_invoice_id, "evt_once")
    assert deliver(client, paid).json() == {"status": "processed"}
    credit_note_create(actor=frank, invoice=pushed, amount=pushed.total, reason="Refunded")
    assert deliver(client, paid).json() == {"status": "duplicate"}
    assert StripeEvent.objects.count() == 1
    assert AuditEntry.objects.filter(action="invoice.paid").count() == 1


def test_events_out_of_order_follow_the_state_stripe_has_now(pushed, stripe, client) -> None:
    finalized = event("invoice.finalized", pushed.stripe_invoice_id)
    failed = event("invoice.payment_failed", pushed.stripe_invoice_id)
    # A paid event can arrive before Stripe's invoice is paid: it is re-read, and nothing changes yet.
    early = deliver(client, event("invoice.paid", pushed.stripe_invoice_id))
    assert early.status_code == 200 and Invoice.objects.get().status == InvoiceStatus.OPEN
    stripe.pay(pushed.stripe_invoice_id)
    deliver(client, event("invoice.paid", pushed.stripe_invoice_id))
    # Older events delivered late do not take the invoice back from paid.
    assert deliver(client, failed).status_code == 200
    assert deliver(client, finalized).status_code == 200
    assert Invoice.objects.get().status == InvoiceStatus.PAID and StripeEvent.objects.count() == 4


def test_an_event_about_an_unknown_invoice_is_stored_and_ignored(db, stripe, client) -> None:
    response = deliver(
        client,
        {
            "id": "evt_x",
            "object": "event",
            "type": "customer.created",
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        },
    )
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert StripeEvent.objects.get().type == "customer.created"


def test_a_signed_event_naming_an_invoice_stripe_does_not_know_is_a_400(db, stripe, client) -> None:
    response = deliver(client, event("invoice.paid", "in_nobody_knows", "evt_unknown"))
    assert response.status_code == 400 and response.json()["code"] == "unknown_invoice"
    assert "data.object.id" in response.json()["fields"]
    # Not stored: were Stripe to learn of it later, a retried delivery is still applied.
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "data.object"),
        ([], "data.object"),
        ({"id": "evt_1", "type": "invoice.paid", "data": []}, "data.object"),
        ({"id": 7, "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}, "id"),
        ({"id": "evt_1", "data": {"object": {"id": "in_1"}}}, "type"),
        ({"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": ["in_1"]}}}, "data.object.id"),
        ({"id": "e" * 101, "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}, "id"),
    ],
)
def test_a_signed_body_that_is_not_an_event_is_a_400_naming_the_field(
    db, stripe, client, payload, field
) -> None:
    response = deliver(client, payload)
    assert response.status_code == 400 and response.json()["code"] == "bad_payload"
    assert list(response.json()["fields"]) == [field]
    assert not StripeEvent.objects.exists()


def test_an_event_stamped_in_the_future_beyond_the_tolerance_is_refused(pushed, stripe, client) -> None:
    stripe.pay(pushed.stripe_invoice_id)
    ahead = int(time.time()) + 301
    response = deliver(client, event("invoice.paid", pushed.stripe_invoice_id), timestamp=ahead)
    assert response.status_code == 400 and response.json()["code"] == "future_signature"
    assert not StripeEvent.objects.exists() and Invoice.objects.get().status == InvoiceStatus.OPEN


def test_with_stripe_off_every_delivery_is_refused(pushed, stripe, client, settings) -> None:
    stripe.pay(pushed.stripe_invoice_id)
    settings.STRIPE_ENABLED = False
    response = deliver(client, event("invoice.paid", pushed.stripe_invoice_id))
    assert response.status_code == 400 and response.json()["code"] == "stripe_off"
    assert not StripeEvent.objects.exists() and Invoice.objects.get().status == InvoiceStatus.OPEN


def test_without_a_webhook_secret_an_event_signed_with_an_empty_key_is_refused(
    pushed, stripe, client, settings
) -> None:
    stripe.pay(pushed.stripe_invoice_id)
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = deliver(client, event("invoice.paid", pushed.stripe_invoice_id), secret="")
    assert response.status_code == 400 and response.json()["code"] == "stripe_off"
    assert not StripeEvent.objects.exists() and Invoice.objects.get().status == InvoiceStatus.OPEN
