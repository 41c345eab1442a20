"""An organization's balance as its owners see it: what is left, how fast it goes, when it runs out."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Sum

from accounts.models import Organization
from billing.choices import LEDGER_CHARGES, InvoiceKind, LedgerKind, PaymentTerms
from billing.models import BillingAccount, CreditGrant, Invoice, LedgerEntry, MonthlyUsageCharge
from clusters.choices import LeaseKind
from core.money import amount_for, cents
from core.periods import month_of, next_month

ZERO = Decimal("0.00")

# Per lease: on-demand usage in [start, at) as billing measures it (see billing/services/debits.py).
LEASE_USAGE_SQL = """
SELECT sum(greatest(0, extract(epoch FROM
           least(date_trunc('second', coalesce(upper(a.period), %(at)s)), %(at)s)
           - greatest(date_trunc('second', lower(a.period)), %(start)s)))::bigint) * l.price_per_gpu_hour
FROM clusters_allocation a
JOIN clusters_lease l ON l.id = a.lease_id
WHERE l.organization_id = %(org)s AND a.is_live AND l.kind = %(kind)s
  AND a.period && tstzrange(%(start)s, %(at)s, '[)')
GROUP BY l.id, l.price_per_gpu_hour
"""

# GPUs held right now by kind, and what they cost per hour at their booked prices.
RATE_SQL = """
SELECT l.kind, count(*), coalesce(sum(l.price_per_gpu_hour), 0)
FROM clusters_allocation a
JOIN clusters_lease l ON l.id = a.lease_id
WHERE l.organization_id = %(org)s AND a.is_live AND a.period @> %(at)s::timestamptz
GROUP BY l.kind
"""


def account_of(organization: Organization) -> BillingAccount:
    """The organization's account; an organization that never paid has an empty prepaid one."""
    found = BillingAccount.objects.filter(pk=organization.pk).first()
    return found or BillingAccount(organization=organization)


def usage_in_month(organization: Organization, period_start: datetime, at: datetime) -> Decimal:
    """On-demand usage of the month up to `at`, rounded once per lease, as its invoice will bill it."""
    with connection.cursor() as cursor:
        cursor.execute(
            LEASE_USAGE_SQL,
            {"org": organization.pk, "start": period_start, "at": at, "kind": LeaseKind.ON_DEMAND},
        )
        return sum((amount_for(exact) for (exact,) in cursor.fetchall()), ZERO)


def usage_not_yet_debited(organization: Organization, at: datetime) -> Decimal:
    """On-demand usage that has run but is not in the ledger yet (debits run every few minutes)."""
    at = at.replace(microsecond=0)
    months = sorted({month_of(at - timedelta(hours=2)), month_of(at)})
    debited = dict(
        MonthlyUsageCharge.objects.filter(organization=organization, period_start__in=months).values_list(
            "period_start", "debited"
        )
    )
    return sum(
        (usage_in_month(organization, m, min(at, next_month(m))) - debited.get(m, ZERO) for m in months), ZERO
    )


@dataclass(frozen=True)
class Rate:
    """GPUs running now and what they cost per hour: on-demand draws the balance, reserved is paid."""

    on_demand_gpus: int
    on_demand_per_hour: Decimal
    reserved_gpus: int
    reserved_per_hour: Decimal


def spend_rate(organization: Organization, at: datetime) -> Rate:
    with connection.cursor() as cursor:
        cursor.execute(RATE_SQL, {"org": organization.pk, "at": at})
        rows = {kind: (count, total) for kind, count, total in cursor.fetchall()}
    od_count, od_total = rows.get(LeaseKind.ON_DEMAND, (0, ZERO))
    rs_count, rs_total = rows.get(LeaseKind.RESERVED, (0, ZERO))
    return Rate(int(od_count), Decimal(od_total), int(rs_count), Decimal(rs_total))


def credit_left(organization: Organization, at: datetime) -> Decimal:
    """Unexpired credit not yet spent: grants' remainders less the charges not yet invoiced.

    Credit is spent on invoices when a month closes (oldest grant first), so charges of months not
    yet closed are taken from what the grants have left, as their invoices will take them.
    """
    remaining = (
        CreditGrant.objects.filter(organization=organization, remaining__gt=0, expires_at__gt=at).aggregate(
            total=Sum("remaining")
        )["total"]
        or ZERO
    )
    if remaining == 0:
        return ZERO
    return max(ZERO, remaining - charges_not_invoiced(organization, at))


def charges_not_invoiced(organization: Organization, at: datetime) -> Decimal:
    """What the organization was charged (usage, commitments, less refunds) in months not yet invoiced."""
    last = (
        Invoice.objects.filter(organization=organization, kind=InvoiceKind.INVOICE)
        .order_by("-period_start")
        .values_list("period_start", flat=True)
        .first()
    )
    entries = LedgerEntry.objects.filter(organization=organization, kind__in=LEDGER_CHARGES)
    if last is not None:
        entries = entries.filter(period_start__gt=last)
    charged = -(entries.aggregate(total=Sum("amount"))["total"] or ZERO)
    return charged + usage_not_yet_debited(organization, at)


def month_spend(organization: Organization, at: datetime) -> Decimal:
    """This month's spend so far: on-demand usage to the second, and reserved commitments booked."""
    start = month_of(at)
    commitments = (
        LedgerEntry.objects.filter(
            organization=organization,
            period_start=start,
            kind__in=(LedgerKind.COMMITMENT, LedgerKind.COMMITMENT_REFUND),
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    return usage_in_month(organization, start, at.replace(microsecond=0)) - commitments


@dataclass(frozen=True)
class Balance:
    """The balance page's and `GET /api/v1/balance/`'s numbers."""

    account: BillingAccount
    at: datetime
    balance: Decimal
    not_yet_debited: Decimal
    available: Decimal
    credit_left: Decimal
    rate: Rate
    month_spend: Decimal

    @property
    def runway(self) -> timedelta | None:
        """How long the balance lasts at the on-demand rate; None when nothing draws it."""
        per_hour = self.rate.on_demand_per_hour
        if per_hour <= 0 or self.account.terms == PaymentTerms.INVOICED:
            return None
        return timedelta(hours=float(max(self.available, ZERO) / per_hour))

    @property
    def runs_out_at(self) -> datetime | None:
        return None if self.runway is None else self.at + self.runway


def balance_of(organization: Organization, at: datetime) -> Balance:
    """Balance, credit, spend rate and runway of an organization at `at`."""
    account = account_of(organization)
    pending = usage_not_yet_debited(organization, at)
    return Balance(
        account=account,
        at=at,
        balance=account.balance,
        not_yet_debited=cents(pending),
        available=account.balance - pending,
        credit_left=credit_left(organization, at),
        rate=spend_rate(organization, at),
        month_spend=month_spend(organization, at),
    )
