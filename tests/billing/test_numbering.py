"""Invoice numbers are gapless per year, even when many invoices are finalized at once."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError

from billing.choices import InvoiceStatus
from billing.models import Invoice
from billing.services.invoicing import invoice_finalize, month_close
from tests.billing.factories import make_lease
from tests.factories import OrganizationFactory
from tests.races import errors_of, race

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 2, tzinfo=UTC)
THREADS = 8


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_finalizations_take_consecutive_numbers_without_gaps_or_duplicates() -> None:
    for n in range(THREADS):
        make_lease(organization=OrganizationFactory.create(), start=MARCH, end=MARCH + timedelta(hours=n + 1))
    month_close(period_start=MARCH, now=NOW, finalize=False)
    drafts = list(Invoice.objects.filter(status=InvoiceStatus.DRAFT))
    results = race(
        [lambda invoice=invoice: invoice_finalize(actor=None, invoice=invoice, now=NOW) for invoice in drafts]
    )
    assert errors_of(results) == []
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"VP-2026-{n:06d}" for n in range(1, THREADS + 1)]


@pytest.mark.django_db(transaction=True)
def test_a_finalization_that_fails_gives_its_number_back() -> None:
    org = OrganizationFactory.create()
    make_lease(organization=org, start=MARCH, end=MARCH + timedelta(hours=1))
    month_close(period_start=MARCH, now=NOW, finalize=False)
    invoice = Invoice.objects.get()
    # A stray row already holding the first number makes the finalization fail after reserving it.
    blocker = Invoice.objects.create(
        organization=org,
        kind="credit_note",
        status="draft",  # a draft: it may be deleted below (a finalized one may not)
        number="VP-2026-000001",
        period_start=MARCH,
        period_end=NOW,
    )
    with pytest.raises(IntegrityError):
        invoice_finalize(actor=None, invoice=invoice, now=NOW)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.DRAFT
    blocker.delete()
    invoice_finalize(actor=None, invoice=invoice, now=NOW)
    assert Invoice.objects.get().number == "VP-2026-000001"
