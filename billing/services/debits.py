"""Usage debits: on-demand usage leaves the balance as it runs, one ledger entry per organization per run.

A run computes each on-demand lease's usage in the month so far from its allocation periods
(billing's definition: bounds truncated to the second, open periods clipped at the run's instant),
rounds it once per lease (core/money.py), adds it up per organization, and debits the difference
from what the month already debited (`MonthlyUsageCharge`). At the month's end the debits therefore
add up to the invoice's usage lines to the cent. Reserved leases are paid when booked (commitments).

Runs take turns on a transaction-level advisory lock; the accounts are locked in id order, so a run
never deadlocks with another or with a top-up, and a top-up racing a run loses nothing.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from billing.choices import LedgerKind
from billing.models import BillingAccount, MonthlyUsageCharge
from clusters.choices import LeaseKind
from core.money import amount_for
from core.periods import month_of, next_month

DEBIT_LOCK = 8_241_001  # pg_advisory_xact_lock key of usage debit runs

USAGE_SQL = """
SELECT l.organization_id, sum(greatest(0, extract(epoch FROM
           least(date_trunc('second', coalesce(upper(a.period), %(until)s)), %(until)s)
           - greatest(date_trunc('second', lower(a.period)), %(start)s)))::bigint) * l.price_per_gpu_hour
FROM clusters_allocation a
JOIN clusters_lease l ON l.id = a.lease_id
WHERE a.is_live AND l.kind = %(kind)s AND a.period && tstzrange(%(start)s, %(until)s, '[)')
GROUP BY l.organization_id, l.id, l.price_per_gpu_hour
"""

POST_SQL = """
WITH d AS (
    SELECT * FROM unnest(%(orgs)s::bigint[], %(amounts)s::numeric[]) AS d(org, amount)
),
moved AS (
    UPDATE billing_billingaccount a SET balance = a.balance + d.amount, entries = a.entries + 1
    FROM d WHERE a.organization_id = d.org
    RETURNING a.organization_id AS org, a.balance, a.entries, d.amount
)
INSERT INTO billing_ledgerentry
    (organization_id, sequence, kind, amount, balance_after, at, period_start, description)
SELECT org, entries, %(kind)s, amount, balance, %(at)s, %(month)s, %(description)s FROM moved
"""


@dataclass(frozen=True)
class DebitResult:
    """What one run debited: organizations charged and the total, for one month."""

    period_start: datetime
    organizations: int
    total: Decimal


def usage_debit(*, now: datetime | None = None) -> list[DebitResult]:
    """Debit on-demand usage up to `now` in this month, and finish last month within two hours of it."""
    now = (now or timezone.now()).replace(microsecond=0)
    months = sorted({month_of(now - timedelta(hours=2)), month_of(now)})
    return [usage_debit_month(period_start=m, until=min(now, next_month(m))) for m in months]


@transaction.atomic
def usage_debit_month(*, period_start: datetime, until: datetime) -> DebitResult:
    """Debit every organization's on-demand usage in the month up to `until`; a re-run debits nothing."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DEBIT_LOCK])
        owed = _usage_so_far(cursor, period_start, until)
    charged = dict(
        MonthlyUsageCharge.objects.filter(period_start=period_start).values_list("organization_id", "debited")
    )
    deltas = {org: amount - charged.get(org, Decimal("0.00")) for org, amount in owed.items()}
    deltas = {org: delta for org, delta in sorted(deltas.items()) if delta != 0}
    if deltas:
        _post(deltas, period_start, until)
        _remember(owed, deltas, period_start, until)
    return DebitResult(period_start, len(deltas), sum(deltas.values(), Decimal("0.00")))


def _usage_so_far(cursor, start: datetime, until: datetime) -> dict[int, Decimal]:
    cursor.execute(USAGE_SQL, {"start": start, "until": until, "kind": LeaseKind.ON_DEMAND})
    owed: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for organization_id, exact in cursor.fetchall():
        owed[organization_id] += amount_for(exact)  # rounded once per lease
    return owed


def _post(deltas: dict[int, Decimal], period_start: datetime, until: datetime) -> None:
    orgs = list(deltas)
    BillingAccount.objects.bulk_create(
        [BillingAccount(organization_id=org) for org in orgs], ignore_conflicts=True, batch_size=2000
    )
    with connection.cursor() as cursor:
        # Locked in id order first: the UPDATE below would lock them in whatever order it joins.
        cursor.execute(
            "SELECT 1 FROM billing_billingaccount WHERE organization_id = ANY(%s::bigint[]) "
            "ORDER BY organization_id FOR UPDATE",
            [_array(orgs)],
        )
        cursor.execute(
            POST_SQL,
            {
                "orgs": _array(orgs),
                "amounts": _array([-delta for delta in deltas.values()]),
                "kind": LedgerKind.USAGE,
                "at": until,
                "month": period_start,
                "description": f"On-demand usage in {period_start:%Y-%m} up to {until:%Y-%m-%d %H:%M} UTC",
            },
        )


def _remember(
    owed: dict[int, Decimal], deltas: dict[int, Decimal], period_start: datetime, until: datetime
) -> None:
    MonthlyUsageCharge.objects.bulk_create(
        [
            MonthlyUsageCharge(
                organization_id=org, period_start=period_start, debited=owed[org], metered_until=until
            )
            for org in deltas
        ],
        update_conflicts=True,
        unique_fields=["organization", "period_start"],
        update_fields=["debited", "metered_until"],
        batch_size=2000,
    )


def _array(values: list) -> str:
    # One array literal per column: parsed in one pass, unlike psycopg2's ARRAY[...] (decisions.md).
    return "{" + ",".join(str(value) for value in values) + "}"
