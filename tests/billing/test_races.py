"""Billing rules that must hold when calls race: threads, each with its own database connection."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from accounts.models import AuditEntry
from billing.choices import InvoiceStatus
from billing.models import Invoice, InvoiceLine, MonthClose, StripeEvent, UsageHour
from billing.services.invoicing import month_close
from tests.billing.factories import make_lease
from tests.billing.helpers import deliver, event
from tests.factories import OrganizationFactory
from tests.races import errors_of, race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 2, tzinfo=UTC)


def test_a_month_closed_by_four_callers_at_once_is_invoiced_once() -> None:
    organizations = [OrganizationFactory.create() for _ in range(3)]
    for n, organization in enumerate(organizations):
        make_lease(organization=organization, start=MARCH, end=MARCH + timedelta(hours=n + 1), gpus=2)
    results = race([lambda: month_close(period_start=MARCH, now=NOW)] * 4)
    assert errors_of(results) == []
    assert sorted(result.invoices_created for result in results) == [0, 0, 0, 3]
    assert MonthClose.objects.get(period_start=MARCH).invoices_created == 3
    per_org = Counter(Invoice.objects.values_list("organization_id", flat=True))
    assert per_org == {organization.pk: 1 for organization in organizations}
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == ["VP-2026-000001", "VP-2026-000002", "VP-2026-000003"]
    assert InvoiceLine.objects.count() == 3
    assert UsageHour.objects.count() == 1 + 2 + 3  # one row per lease and hour, none twice
    assert AuditEntry.objects.filter(action="invoice.finalize").count() == 3


@pytest.fixture
def pushed(stripe, acme) -> Invoice:
    """Acme's March invoice, finalized and pushed to the fake Stripe (on commit, as in production)."""
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=10), gpus=8, price="1.9900")
    month_close(period_start=MARCH, now=NOW)
    invoice = Invoice.objects.get()
    assert invoice.stripe_invoice_id and invoice.status == InvoiceStatus.OPEN
    stripe.pay(invoice.stripe_invoice_id)
    return invoice


def test_one_webhook_delivered_six_times_at_once_is_stored_and_applied_once(pushed) -> None:
    paid = event("invoice.paid", pushed.stripe_invoice_id, "evt_raced")
    responses = race([lambda: deliver(Client(), paid)] * 6)
    assert [response.status_code for response in responses] == [200] * 6
    outcomes = Counter(response.json()["status"] for response in responses)
    assert outcomes == {"processed": 1, "duplicate": 5}
    assert StripeEvent.objects.filter(event_id="evt_raced").count() == 1
    assert Invoice.objects.get(pk=pushed.pk).status == InvoiceStatus.PAID
    assert AuditEntry.objects.filter(action="invoice.paid").count() == 1


def test_two_paid_events_for_one_invoice_at_once_mark_it_paid_once(pushed) -> None:
    events = [event("invoice.paid", pushed.stripe_invoice_id, f"evt_paid_{n}") for n in range(4)]
    responses = race([lambda e=e: deliver(Client(raise_request_exception=False), e) for e in events])
    assert [response.status_code for response in responses] == [200] * 4
    assert StripeEvent.objects.count() == 4
    assert Invoice.objects.get(pk=pushed.pk).status == InvoiceStatus.PAID
    assert AuditEntry.objects.filter(action="invoice.paid").count() == 1
