"""Property-based: over random sequences of top-ups, bookings (on-demand and reserved), releases,
cancellations, credit grants, debit runs and the month's close, the ledger reconciles to the cent
(top-ups + credits − debits = balance, entry by entry) and each invoice equals the ledger's charges."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing.choices import LEDGER_CHARGES, InvoiceKind, LedgerKind, LineKind, PaymentTerms
from billing.models import BillingAccount, Invoice, LedgerEntry
from billing.services.commitments import LeaseCharges
from billing.services.credits import credit_grant_create
from billing.services.debits import usage_debit_month
from billing.services.invoicing import month_close
from billing.services.refusals import InsufficientBalance
from billing.services.top_ups import top_up_record
from clusters.choices import LeaseKind, LeaseState
from clusters.models import Allocation, Lease
from tests.billing.factories import make_lease, release
from tests.factories import NodeFactory, OrganizationFactory, RegionFactory

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
HOUR = 3600


@dataclass(frozen=True)
class Step:
    """One thing that happens, `gap` seconds after the one before (all within March), to `org`."""

    kind: str
    gap: int
    org: int
    amount: int  # USD for money; GPUs for bookings
    length: int  # hours of a reserved window
    ahead: int  # hours from booking a reserved lease to its start


steps = st.lists(
    st.builds(
        Step,
        # Weighted towards what makes the ledger interesting: money in, commitments, cancellations.
        kind=st.sampled_from(
            ["top_up", "top_up", "reserved", "reserved", "reserved", "cancel", "cancel", "on_demand"]
            + ["release", "credit", "debit"]
        ),
        gap=st.one_of(st.integers(0, 3 * HOUR), st.integers(0, 36 * HOUR)),
        org=st.integers(0, 1),
        amount=st.sampled_from([1, 2, 4, 8, 10, 50, 333, 2500]),
        length=st.integers(1, 72),
        ahead=st.integers(0, 96),
    ),
    min_size=3,
    max_size=14,
)


def moment(seconds: int) -> datetime:
    return MARCH + timedelta(seconds=seconds, microseconds=seconds % 997)


def apply(step: Step, seconds: int, orgs: list, region) -> None:
    org, at = orgs[step.org], moment(seconds)
    if step.kind == "top_up":
        top_up_record(
            organization=org,
            amount=Decimal(step.amount * 25),
            external_id=f"pi-{seconds}",
            description="t",
            at=at,
        )
    elif step.kind == "credit":
        credit_grant_create(
            actor=None,
            organization=org,
            amount=Decimal(step.amount),
            expires_at=APRIL + timedelta(days=60),
            granted_at=at,
        )
    elif step.kind == "debit":
        usage_debit_month(period_start=MARCH, until=at.replace(microsecond=0))
    elif step.kind in ("on_demand", "reserved"):
        _book(step, org, at, region)
    else:
        _change(step, org, at)


def _book(step: Step, org, at: datetime, region) -> None:
    gpus = step.amount if step.amount in (1, 2, 4, 8) else 1
    node = NodeFactory.create(cluster__region=region)
    if step.kind == "on_demand":
        make_lease(organization=org, start=at, end=None, gpus=gpus, price="2.3331", node=node, booked_at=at)
        return
    start = at + timedelta(hours=step.ahead)
    lease = make_lease(
        organization=org,
        start=start,
        end=start + timedelta(hours=step.length),
        gpus=gpus,
        price="1.9877",
        node=node,
        kind=LeaseKind.RESERVED,
        booked_at=at,
    )
    try:
        with transaction.atomic():
            LeaseCharges().lease_booked(lease=lease, actor=None)
    except InsufficientBalance:  # refused: the booking would not exist
        Allocation.objects.filter(lease=lease).delete()
        lease.delete()


def _change(step: Step, org, at: datetime) -> None:
    leases = Lease.objects.filter(organization=org, state=LeaseState.ACTIVE)
    if step.kind == "release":
        running = leases.filter(start__lt=at).exclude(end__lte=at).order_by("start").first()
        if running is not None:
            release(running, at.replace(microsecond=0))
        return
    # Cancel the reserved lease (of either organization) that starts last, if it has not started yet:
    # in time for a refund, or not.
    future = (
        Lease.objects.filter(state=LeaseState.ACTIVE, kind=LeaseKind.RESERVED, start__gt=at)
        .order_by("-start")
        .first()
    )
    if future is not None:
        Lease.objects.filter(pk=future.pk).update(state=LeaseState.CANCELLED)
        future.allocations.update(is_live=False)
        LeaseCharges().lease_cancelled(lease=future, actor=None, at=at)


def entries_reconcile(org) -> None:
    running = Decimal("0.00")
    for number, entry in enumerate(
        LedgerEntry.objects.filter(organization=org).order_by("sequence"), start=1
    ):
        running += entry.amount
        assert (entry.sequence, entry.balance_after) == (number, running)
    account = BillingAccount.objects.filter(pk=org.pk).first()
    assert (account.balance if account else Decimal("0.00")) == running
    by_kind = dict(
        LedgerEntry.objects.filter(organization=org).values_list("kind").annotate(total=Sum("amount"))
    )
    money_in = by_kind.get(LedgerKind.TOP_UP, 0) + by_kind.get(LedgerKind.CREDIT, 0)
    money_out = -sum(by_kind.get(kind, 0) for kind in (*LEDGER_CHARGES, LedgerKind.CREDIT_EXPIRY))
    assert money_in - money_out + by_kind.get(LedgerKind.SLA_CREDIT, 0) == running


def invoice_equals_ledger(org) -> None:
    invoice = Invoice.objects.filter(organization=org, kind=InvoiceKind.INVOICE, period_start=MARCH).first()
    charges = -(
        LedgerEntry.objects.filter(organization=org, period_start=MARCH, kind__in=LEDGER_CHARGES).aggregate(
            total=Sum("amount")
        )["total"]
        or Decimal("0.00")
    )
    if invoice is None:
        assert charges == 0
        return
    lines = list(invoice.lines.all())
    assert invoice.subtotal == charges
    assert invoice.total == invoice.subtotal - invoice.credits == sum(line.amount for line in lines) >= 0
    program = -sum((line.amount for line in lines if line.kind == LineKind.PROGRAM_CREDIT), Decimal(0))
    granted = LedgerEntry.objects.filter(organization=org, kind=LedgerKind.CREDIT).aggregate(t=Sum("amount"))[
        "t"
    ]
    assert program <= (granted or 0)


@pytest.mark.slow
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_the_ledger_reconciles_and_invoices_equal_its_charges(db, plan) -> None:
    with transaction.atomic():
        region = RegionFactory.create()
        orgs = [OrganizationFactory.create(terms=PaymentTerms.PREPAID) for _ in range(2)]
        seconds = 0
        for step in plan:
            seconds = min(seconds + step.gap, 29 * 24 * HOUR)
            apply(step, seconds, orgs, region)
            for org in orgs:
                entries_reconcile(org)
        month_close(period_start=MARCH, now=APRIL + timedelta(hours=1))
        for org in orgs:
            entries_reconcile(org)
            invoice_equals_ledger(org)
        for kind in (LedgerKind.COMMITMENT, LedgerKind.COMMITMENT_REFUND, LedgerKind.USAGE):
            event(f"{kind}: {min(LedgerEntry.objects.filter(kind=kind).count(), 2)}")
        transaction.set_rollback(True)
