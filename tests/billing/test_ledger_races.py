"""Top-ups, usage debits and commitments of one organization racing each other lose no cent and
double nothing (real threads on PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.choices import LedgerKind, PaymentTerms
from billing.models import BillingAccount, LedgerEntry
from billing.services.debits import usage_debit_month
from billing.services.ledger import Posting, ledger_post
from billing.services.refusals import InsufficientBalance
from billing.services.top_ups import top_up_record
from tests.billing.factories import make_lease
from tests.factories import OrganizationFactory
from tests.races import errors_of, race

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def test_concurrent_top_ups_debits_and_duplicates_lose_nothing_and_double_nothing() -> None:
    org = OrganizationFactory.create(terms=PaymentTerms.PREPAID)
    make_lease(organization=org, start=MARCH, end=MARCH + timedelta(hours=5), gpus=8, price="2.5000")
    calls = [
        *(
            lambda i=i: top_up_record(
                organization=org, amount=Decimal("10.00"), external_id=f"pi_{i}", description="t"
            )
            for i in range(6)
        ),
        # The same payment reported five times at once (our call, webhooks): counted once.
        *(
            lambda: top_up_record(
                organization=org, amount=Decimal("7.00"), external_id="pi_dup", description="t"
            )
            for _ in range(5)
        ),
        *(lambda: usage_debit_month(period_start=MARCH, until=MARCH + timedelta(hours=5)) for _ in range(3)),
    ]
    results = race(calls)
    assert errors_of(results) == []
    account = BillingAccount.objects.get(pk=org.pk)
    assert account.balance == Decimal("60.00") + Decimal("7.00") - Decimal("100.00")
    entries = list(LedgerEntry.objects.filter(organization=org).order_by("sequence"))
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert sum(e.amount for e in entries) == account.balance == entries[-1].balance_after
    assert [e.kind for e in entries].count(LedgerKind.USAGE) == 1


def test_two_commitments_racing_for_the_last_dollars_cannot_both_be_charged() -> None:
    org = OrganizationFactory.create(terms=PaymentTerms.PREPAID)
    top_up_record(organization=org, amount=Decimal("100.00"), external_id="pi_1", description="t")

    def commit(i: int) -> object:
        posting = Posting(
            kind=LedgerKind.COMMITMENT, amount=Decimal("-60.00"), description=f"{i}", floor=Decimal(0)
        )
        return ledger_post(organization=org, posting=posting)

    results = race([lambda i=i: commit(i) for i in range(4)])
    refused = [r for r in results if isinstance(r, InsufficientBalance)]
    assert len(refused) == 3 and len(errors_of(results)) == 3
    assert BillingAccount.objects.get(pk=org.pk).balance == Decimal("40.00")


def test_bookings_racing_past_the_monthly_spend_limit_are_held_to_it(seeded_fleet) -> None:
    from accounts.choices import Role
    from billing.services.refusals import SpendLimitReached
    from clusters.models import Lease, Region
    from clusters.services.booking import lease_book
    from tests.factories import MembershipFactory

    org = OrganizationFactory.create(terms=PaymentTerms.PREPAID, gpu_quota=64)
    owner = MembershipFactory.create(organization=org, role=Role.OWNER).user
    top_up_record(organization=org, amount=Decimal("1000.00"), external_id="pi_1", description="t")
    texas = Region.objects.get(code="us-tx-1")
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)

    def book() -> Lease:
        return lease_book(
            user=owner,
            organization=org,
            region=texas,
            gpus=1,
            kind="reserved",
            start=start,
            end=start + timedelta(hours=10),
        )

    first = book()
    commitment = -LedgerEntry.objects.get(kind=LedgerKind.COMMITMENT).amount
    # Room for two more bookings like the first, not three: of four racing, two are refused.
    BillingAccount.objects.filter(pk=org.pk).update(monthly_spend_limit=commitment * Decimal("3.5"))
    results = race([book for _ in range(4)])
    refused = [r for r in results if isinstance(r, SpendLimitReached)]
    assert len(refused) == 2 and len(errors_of(results)) == 2, results
    assert Lease.objects.filter(organization=org).count() == 3 and first.pk
    charged = LedgerEntry.objects.filter(organization=org, kind=LedgerKind.COMMITMENT)
    assert charged.count() == 3
    assert BillingAccount.objects.get(pk=org.pk).balance == Decimal("1000.00") - 3 * commitment
