"""Property-based: over random leases, releases, price changes and unhealthy periods, the invoices
add up to the allocations' GPU-seconds times their booked prices, and closing again changes nothing."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing.choices import LineKind
from billing.models import Invoice, InvoiceLine, UsageHour
from billing.services.invoicing import month_close
from billing.services.metering import usage_meter
from clusters.choices import LeaseKind, LeaseState
from clusters.models import PriceBookEntry
from clusters.selectors.prices import price_for
from tests.billing.factories import make_lease, release, unhealthy
from tests.factories import OrganizationFactory, RegionFactory

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 3, tzinfo=UTC)
SPAN = int((APRIL - MARCH).total_seconds())


def at(seconds: int, micros: int = 0) -> datetime:
    return MARCH + timedelta(seconds=seconds, microseconds=micros)


def trunc(value: datetime) -> datetime:
    return value.replace(microsecond=0)


@dataclass
class LeasePlan:
    org: int
    gpus: int
    start: int
    micros: int
    length: int | None  # None: on-demand, open until released (or now)
    release_after: int | None
    failed: bool
    outages: list[tuple[int, int | None]]


lease_plans = st.builds(
    LeasePlan,
    org=st.integers(0, 2),
    gpus=st.sampled_from([1, 2, 4, 8]),
    start=st.integers(-3 * 86400, SPAN - 1),
    micros=st.integers(0, 999_999),
    length=st.one_of(st.none(), st.integers(1, 5 * 86400)),
    release_after=st.one_of(st.none(), st.integers(1, 3 * 86400)),
    failed=st.booleans(),
    outages=st.lists(
        st.tuples(st.integers(-86400, SPAN), st.one_of(st.none(), st.integers(1, 86400))), max_size=2
    ),
)
price_changes = st.lists(
    st.tuples(st.integers(-10 * 86400, SPAN), st.decimals("0.5000", "9.9999", places=4)),
    min_size=1,
    max_size=3,
)


def held(plan: LeasePlan) -> tuple[datetime, datetime | None]:
    start = at(plan.start, plan.micros)
    end = start + timedelta(seconds=plan.length) if plan.length else None
    if plan.release_after is not None:
        released = start + timedelta(seconds=plan.release_after, microseconds=137)
        end = released if end is None else min(end, released)
    return start, end


def overlap(lo: datetime, hi: datetime, a: datetime, b: datetime) -> int:
    return max(0, int((min(hi, b) - max(lo, a)).total_seconds()))


def expected_usage_amount(plan: LeasePlan, price: Decimal) -> Decimal:
    """The rule written independently: bounds truncated to the second, open ends at now, one rounding."""
    if plan.failed:
        return Decimal("0.00")
    start, end = held(plan)
    seconds = overlap(trunc(start), trunc(end or NOW), MARCH, APRIL) * plan.gpus
    return (Decimal(seconds) * price / 3600).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def build(plans: list[LeasePlan], prices: list[tuple[int, Decimal]]) -> dict[int, Decimal]:
    region = RegionFactory.create()
    for offset, price in prices:
        PriceBookEntry.objects.get_or_create(
            kind=LeaseKind.RESERVED,
            region=None,
            effective_from=at(offset - 40 * 86400),
            defaults={"price_per_gpu_hour": price},
        )
        PriceBookEntry.objects.get_or_create(
            kind=LeaseKind.ON_DEMAND,
            region=None,
            effective_from=at(offset - 40 * 86400),
            defaults={"price_per_gpu_hour": price + 1},
        )
    orgs = [OrganizationFactory.create() for _ in range(3)]
    expected: dict[int, Decimal] = {}
    for plan in plans:
        start, end = held(plan)
        kind = LeaseKind.RESERVED if plan.length else LeaseKind.ON_DEMAND
        price = price_for(kind=kind, region=region, at=start - timedelta(hours=1))  # booked an hour before
        state = LeaseState.FAILED if plan.failed else LeaseState.ACTIVE
        lease = make_lease(
            organization=orgs[plan.org],
            start=start,
            end=start + timedelta(seconds=plan.length) if plan.length else None,
            gpus=plan.gpus,
            price=price,
            region=region,
            state=state,
        )
        if end is not None and end != lease.end:
            release(lease, end)
        node = lease.allocations.first().node
        for offset, length in plan.outages:
            unhealthy(node, at(offset, 250_000), at(offset + length, 500_000) if length else None)
        org_id = orgs[plan.org].pk
        expected[org_id] = expected.get(org_id, Decimal("0.00")) + expected_usage_amount(plan, price)
    return expected


def snapshot() -> tuple[list, list, list]:
    return (
        list(
            UsageHour.objects.order_by("lease", "hour").values_list("lease", "hour", "gpu_seconds", "amount")
        ),
        list(
            Invoice.objects.order_by("pk").values_list(
                "pk", "number", "status", "subtotal", "credits", "total"
            )
        ),
        list(InvoiceLine.objects.order_by("pk").values_list("invoice", "position", "kind", "amount")),
    )


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=st.lists(lease_plans, min_size=1, max_size=5), prices=price_changes)
def test_invoices_add_up_to_allocation_seconds_times_booked_prices(db, plans, prices) -> None:
    with transaction.atomic():
        expected = build(plans, prices)
        month_close(period_start=MARCH, now=NOW)
        for invoice in Invoice.objects.prefetch_related("lines"):
            lines = list(invoice.lines.all())
            usage = sum((line.amount for line in lines if line.kind == LineKind.USAGE), Decimal("0.00"))
            assert usage == invoice.subtotal == expected[invoice.organization_id]
            assert sum((line.amount for line in lines), Decimal("0.00")) == invoice.total >= 0
            assert invoice.total == invoice.subtotal - invoice.credits
            for lease_id in {line.lease_id for line in lines if line.kind == LineKind.SLA_CREDIT}:
                billed = sum(line.amount for line in lines if line.lease_id == lease_id)
                assert billed >= 0  # a lease is never credited more than it cost
        invoiced = set(Invoice.objects.values_list("organization_id", flat=True))
        assert {org for org, amount in expected.items() if amount > 0} <= invoiced <= set(expected)
        event(f"SLA credit lines: {min(InvoiceLine.objects.filter(kind=LineKind.SLA_CREDIT).count(), 3)}")
        before = snapshot()
        usage_meter(start=MARCH, end=APRIL, now=NOW + timedelta(days=1))
        month_close(period_start=MARCH, now=NOW + timedelta(days=2))
        assert snapshot() == before
        transaction.set_rollback(True)
