"""The balance ledger: numbered entries, a balance that is their sum, debits that add up to invoices."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from billing.choices import InvoiceStatus, LedgerKind, PaymentTerms
from billing.models import BillingAccount, Invoice, LedgerEntry
from billing.selectors.balance import balance_of
from billing.services.credits import credit_grant_create, credits_expire
from billing.services.debits import usage_debit_month
from billing.services.invoicing import month_close
from billing.services.ledger import Posting, ledger_post, ledger_post_here
from billing.services.refusals import InsufficientBalance
from billing.services.top_ups import top_up_record
from tests.billing.factories import make_lease
from tests.factories import OrganizationFactory

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture
def startup(db):
    """A prepaid organization, as every new sign-up is."""
    return OrganizationFactory.create(name="Tiny Labs", terms=PaymentTerms.PREPAID)


def reconciles(organization) -> bool:
    entries = LedgerEntry.objects.filter(organization=organization).order_by("sequence")
    running = Decimal("0.00")
    for number, entry in enumerate(entries, start=1):
        running += entry.amount
        assert (entry.sequence, entry.balance_after) == (number, running)
    return BillingAccount.objects.get(pk=organization.pk).balance == running


def test_a_top_up_adds_to_the_balance_once_per_payment(startup) -> None:
    first = top_up_record(
        organization=startup, amount=Decimal("100.00"), external_id="pi_1", description="card"
    )
    again = top_up_record(
        organization=startup, amount=Decimal("100.00"), external_id="pi_1", description="card"
    )
    assert first is not None and again is None
    assert BillingAccount.objects.get(pk=startup.pk).balance == Decimal("100.00")
    assert reconciles(startup)


def test_the_database_refuses_an_entry_below_its_floor(startup) -> None:
    top_up_record(organization=startup, amount=Decimal("10.00"), external_id="pi_1", description="card")
    with pytest.raises(InsufficientBalance):
        ledger_post(
            organization=startup,
            posting=Posting(
                kind=LedgerKind.COMMITMENT, amount=Decimal("-10.01"), description="x", floor=Decimal(0)
            ),
        )
    # And the CHECK constraint is there even for a writer that skips the service.
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_ledgerentry (organization_id, sequence, kind, amount, balance_after, floor, "
            "at, description) VALUES (%s, 99, 'commitment', -20, -10, 0, now(), 'bypass')",
            [startup.pk],
        )
    assert BillingAccount.objects.get(pk=startup.pk).balance == Decimal("10.00")
    assert reconciles(startup)


def test_on_demand_usage_is_debited_as_it_runs_and_adds_up_to_the_invoice(startup) -> None:
    top_up_record(
        organization=startup, amount=Decimal("500.00"), external_id="pi_1", description="card", at=MARCH
    )
    # 3 GPUs at 2.3333/h for 10 h 20 min 7 s: rounding per run would drift; per lease it cannot.
    make_lease(
        organization=startup,
        start=MARCH,
        end=MARCH + timedelta(hours=10, minutes=20, seconds=7),
        gpus=3,
        price="2.3333",
    )
    make_lease(organization=startup, start=MARCH + timedelta(hours=5), end=None, gpus=1, price="1.1111")
    for minutes in range(7, 60 * 30, 97):  # debit runs at odd moments through the month
        usage_debit_month(period_start=MARCH, until=MARCH + timedelta(minutes=minutes))
    month_close(period_start=MARCH, now=APRIL + timedelta(hours=1))
    invoice = Invoice.objects.get(organization=startup)
    debits = LedgerEntry.objects.filter(organization=startup, kind=LedgerKind.USAGE, period_start=MARCH)
    assert -sum(entry.amount for entry in debits) == invoice.subtotal == invoice.total
    assert invoice.status == InvoiceStatus.PAID  # prepaid: paid from the balance as it ran
    assert BillingAccount.objects.get(pk=startup.pk).balance == Decimal("500.00") - invoice.total
    assert reconciles(startup)


def test_a_second_debit_run_debits_nothing(startup) -> None:
    make_lease(organization=startup, start=MARCH, end=MARCH + timedelta(hours=2), gpus=8, price="2.0000")
    first = usage_debit_month(period_start=MARCH, until=APRIL)
    second = usage_debit_month(period_start=MARCH, until=APRIL)
    assert (first.total, first.organizations) == (Decimal("32.00"), 1)
    assert (second.total, second.organizations) == (Decimal("0.00"), 0)
    assert BillingAccount.objects.get(pk=startup.pk).balance == Decimal("-32.00")


def test_credit_counts_in_the_balance_and_its_unspent_part_expires(startup) -> None:
    granted = MARCH - timedelta(days=10)
    credit_grant_create(
        actor=None,
        organization=startup,
        amount=Decimal("100"),
        expires_at=MARCH + timedelta(days=15),
        granted_at=granted,
    )
    top_up_record(
        organization=startup, amount=Decimal("50.00"), external_id="pi_1", description="card", at=MARCH
    )
    make_lease(organization=startup, start=MARCH, end=MARCH + timedelta(hours=10), gpus=2, price="2.0000")
    usage_debit_month(period_start=MARCH, until=MARCH + timedelta(days=1))
    assert balance_of(startup, MARCH + timedelta(days=1)).credit_left == Decimal("60.00")
    credits_expire(now=MARCH + timedelta(days=15))
    assert credits_expire(now=MARCH + timedelta(days=16)) == 0  # once
    # 40 of the grant pays March's usage at the close; the other 60 left the balance; the top-up stays.
    assert BillingAccount.objects.get(pk=startup.pk).balance == Decimal("50.00")
    month_close(period_start=MARCH, now=APRIL + timedelta(hours=1))
    invoice = Invoice.objects.get(organization=startup)
    assert (invoice.subtotal, invoice.credits, invoice.total) == (
        Decimal("40.00"),
        Decimal("40.00"),
        Decimal(0),
    )
    assert reconciles(startup)


@pytest.mark.django_db(transaction=True)
def test_posting_here_outside_an_atomic_block_is_refused_and_writes_nothing() -> None:
    startup = OrganizationFactory.create(name="Tiny Labs", terms=PaymentTerms.PREPAID)
    top_up = Posting(kind=LedgerKind.TOP_UP, amount=Decimal("10.00"), description="top-up")

    with pytest.raises(transaction.TransactionManagementError):
        ledger_post_here(organization=startup, posting=top_up)

    assert not LedgerEntry.objects.filter(organization=startup).exists()
