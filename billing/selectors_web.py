"""Reads behind the customer's billing page: spend so far this month and credits left."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet, Sum

from accounts.models import Organization
from billing.models import CreditGrant
from billing.money import amount_for, gpu_hours
from billing.periods import month_of


@dataclass(frozen=True)
class Spend:
    """An organization's usage in [start, at): GPU-hours and their cost at the booked prices."""

    start: datetime
    at: datetime
    gpu_seconds: int
    gpu_hours: Decimal
    amount: Decimal


# Usage as billing defines it: the overlap of live allocation periods with the interval, an open
# period clipped at `at`, bounds truncated to the second (billing/money.py).
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


def credits_left(organization: Organization, at: datetime) -> QuerySet[CreditGrant]:
    """The organization's grants with money left that have not expired, soonest to expire first."""
    grants = CreditGrant.objects.filter(organization=organization, remaining__gt=0, expires_at__gt=at)
    return grants.order_by("expires_at", "pk")


def credits_total(grants: QuerySet[CreditGrant]) -> Decimal:
    """The money left on these grants."""
    return grants.aggregate(total=Sum("remaining"))["total"] or Decimal("0.00")
