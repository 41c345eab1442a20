"""Usage reads: an organization's usage by hour, spend this month."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet, Sum

from accounts.models import Organization
from billing.models import UsageHour
from clusters.models import Lease
from core.money import amount_for, gpu_hours
from core.periods import month_of


def usage_by_hour(organization: Organization, start: datetime, end: datetime) -> QuerySet:
    """The organization's GPU-seconds and amount per clock hour in [start, end)."""
    # Through its leases: the (lease, hour) key finds each lease's hours (usage rows keep no index
    # of their own on the organization; billing/models.py).
    leases = Lease.objects.filter(organization=organization).values("pk")
    rows = UsageHour.objects.filter(lease__in=leases, hour__gte=start, hour__lt=end)
    return rows.values("hour").annotate(gpu_seconds=Sum("gpu_seconds"), amount=Sum("amount")).order_by("hour")


@dataclass(frozen=True)
class Spend:
    """An organization's usage in [start, at): GPU-hours and their cost at the booked prices."""

    start: datetime
    at: datetime
    gpu_seconds: int
    gpu_hours: Decimal
    amount: Decimal


# Usage as billing defines it: the overlap of live allocation periods with the interval, an open
# period clipped at `at`, bounds truncated to the second (core/money.py).
SPEND_SQL = """
SELECT coalesce(sum(secs), 0), coalesce(sum(secs * price), 0)
FROM (
    SELECT l.price_per_gpu_hour AS price,
           extract(epoch FROM
               least(date_trunc('second', coalesce(upper(a.period), %(at)s)), %(at)s)
               - greatest(date_trunc('second', lower(a.period)), %(start)s))::bigint AS secs
    FROM clusters_allocation a
    JOIN clusters_lease l ON l.id = a.lease_id
    WHERE l.organization_id = %(org)s AND a.is_live AND a.period && tstzrange(%(start)s, %(at)s, '[)')
) AS held
WHERE secs > 0
"""


def spend_this_month(organization: Organization, at: datetime) -> Spend:
    """What the organization has used since the start of the month, up to `at` (to the second)."""
    at = at.replace(microsecond=0)
    start = month_of(at)
    with connection.cursor() as cursor:
        cursor.execute(SPEND_SQL, {"org": organization.pk, "start": start, "at": at})
        seconds, exact = cursor.fetchone()
    return Spend(start, at, int(seconds), gpu_hours(int(seconds)), amount_for(Decimal(exact)))
