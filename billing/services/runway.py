"""Running out: warnings at a low balance and at 24 h and 1 h of runway, automatic top-up, and when
the balance is gone (or the account is suspended) on-demand leases released after a grace period.

Beat runs `balances_watch` every BALANCE_SWEEP_INTERVAL_S. Each warning is a column set by a
conditional UPDATE (`... WHERE column IS NULL`): of two sweepers, only the one whose update
changed the row sends the email, after commit. Money coming in clears the columns
(top_ups.top_up_record), so the next episode warns again. Reserved leases are paid: they run on.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from billing.choices import PaymentTerms
from billing.models import BillingAccount
from billing.selectors.balance import Balance, balance_of
from billing.services.payment import billing_page
from clusters.choices import LeaseKind, LeaseState
from clusters.models import Lease
from clusters.services.booking import lease_release
from clusters.services.lifecycle import owner_emails

ZERO = Decimal("0.00")


@dataclass
class WatchReport:
    """What one sweep did."""

    warned: int = 0
    exhausted: int = 0
    released: list[int] = field(default_factory=list)
    top_ups_queued: list[int] = field(default_factory=list)


def _watched(now: datetime) -> list[int]:
    """Organizations running on-demand leases, and those already out of money or suspended."""
    running = Lease.objects.filter(kind=LeaseKind.ON_DEMAND, state=LeaseState.ACTIVE).filter(
        Q(end__isnull=True) | Q(end__gt=now)
    )
    flagged = BillingAccount.objects.filter(Q(exhausted_at__isnull=False) | Q(suspended_at__isnull=False))
    ids = set(running.values_list("organization_id", flat=True)) | set(flagged.values_list("pk", flat=True))
    return sorted(ids)


def balances_watch(*, now: datetime | None = None) -> WatchReport:
    """One sweep over the organizations whose balance is moving."""
    now = now or timezone.now()
    report = WatchReport()
    for organization in Organization.objects.filter(pk__in=_watched(now)).order_by("pk"):
        _watch_one(organization, balance_of(organization, now), now, report)
    return report


def _watch_one(organization: Organization, balance: Balance, now: datetime, report: WatchReport) -> None:
    account = balance.account
    if account.suspended_at is not None:
        if account.suspended_at + settings.RUN_OUT_GRACE <= now:
            _release_on_demand(organization, now, report, "suspended")
        return
    if account.terms != PaymentTerms.PREPAID:
        return
    if _auto_top_up_due(account, balance):
        report.top_ups_queued.append(organization.pk)
        _queue_auto_top_up(organization.pk)
    report.warned += _warnings(organization, account, balance, now)
    if balance.available > 0:
        if account.exhausted_at is not None:
            BillingAccount.objects.filter(pk=account.pk).update(exhausted_at=None)
        return
    if _mark(account, "exhausted_at", now):
        report.exhausted += 1
        _email(organization, *_exhausted_message(organization, balance, now))
    elif account.exhausted_at is not None and account.exhausted_at + settings.RUN_OUT_GRACE <= now:
        _release_on_demand(organization, now, report, "exhausted")


def _auto_top_up_due(account: BillingAccount, balance: Balance) -> bool:
    return (
        account.has_card
        and account.auto_top_up_amount is not None
        and account.auto_top_up_threshold is not None
        and account.auto_top_up_failures < settings.AUTO_TOP_UP_MAX_ATTEMPTS
        and balance.available < account.auto_top_up_threshold
    )


def _queue_auto_top_up(organization_id: int) -> None:
    from billing import tasks

    transaction.on_commit(lambda: tasks.auto_top_up.delay(organization_id))


def _warnings(organization: Organization, account: BillingAccount, balance: Balance, now: datetime) -> int:
    sent = 0
    threshold = account.low_balance_threshold
    if (
        threshold is not None
        and balance.available < threshold
        and _mark(account, "low_balance_warned_at", now)
    ):
        _email(organization, *_low_message(balance, threshold))
        sent += 1
    runway = balance.runway
    for hours in settings.RUNWAY_WARNING_HOURS:
        column = f"runway_{hours}h_warned_at"
        close = runway is not None and balance.available > 0 and runway <= timedelta(hours=hours)
        if close and _mark(account, column, now):
            _email(organization, *_runway_message(balance, hours))
            sent += 1
    return sent


def _mark(account: BillingAccount, column: str, now: datetime) -> bool:
    """Set the column once: True only for the sweeper whose update changed the row."""
    return bool(
        BillingAccount.objects.filter(pk=account.pk, **{f"{column}__isnull": True}).update(**{column: now})
    )


@transaction.atomic
def _release_on_demand(organization: Organization, now: datetime, report: WatchReport, why: str) -> None:
    running = Lease.objects.filter(
        organization=organization, kind=LeaseKind.ON_DEMAND, state=LeaseState.ACTIVE, start__lte=now
    ).filter(Q(end__isnull=True) | Q(end__gt=now))
    released = [lease_release(user=None, lease=lease) for lease in running]
    if released:
        report.released += [lease.pk for lease in released]
        _email(organization, *_released_message(released, why))


def _email(organization: Organization, subject: str, body: str) -> None:
    recipients = owner_emails([organization.pk]).get(organization.pk, [])
    if organization.billing_email and organization.billing_email not in recipients:
        recipients.append(organization.billing_email)
    send: Callable[[], object] = lambda: send_mail(subject, body, None, recipients, fail_silently=True)  # noqa: E731
    if recipients:
        transaction.on_commit(send)


def _low_message(balance: Balance, threshold: Decimal) -> tuple[str, str]:
    return (
        "Voltpark: your balance is low",
        f"Your balance is {balance.available} USD, below the {threshold} USD you asked to hear about.\n"
        f"Top up on {billing_page()}.",
    )


def _runway_message(balance: Balance, hours: int) -> tuple[str, str]:
    when = f"{balance.runs_out_at:%Y-%m-%d %H:%M} UTC" if balance.runs_out_at else "soon"
    return (
        f"Voltpark: your balance runs out in under {hours} hour{'s' if hours != 1 else ''}",
        f"Your balance is {balance.available} USD and your on-demand leases cost "
        f"{balance.rate.on_demand_per_hour} USD an hour, so it runs out around {when}.\n"
        f"When it does, on-demand leases are released after {_grace()}. Top up on {billing_page()}.",
    )


def _exhausted_message(organization: Organization, balance: Balance, now: datetime) -> tuple[str, str]:
    release_at = now + settings.RUN_OUT_GRACE
    return (
        "Voltpark: your balance has run out",
        f"{organization.name}'s balance is {balance.available} USD. New bookings are refused, and your "
        f"on-demand leases will be released at {release_at:%Y-%m-%d %H:%M} UTC unless you top up on "
        f"{billing_page()}. Reserved leases are paid for and run to their end.",
    )


def _released_message(released: list[Lease], why: str) -> tuple[str, str]:
    reason = "the balance ran out" if why == "exhausted" else "the account is suspended"
    ids = ", ".join(str(lease.public_id) for lease in released)
    return (
        "Voltpark: on-demand leases released",
        f"Because {reason}, these on-demand leases were released after {_grace()}: {ids}.\n"
        f"Top up or settle what is due on {billing_page()} to book again.",
    )


def _grace() -> str:
    minutes = int(settings.RUN_OUT_GRACE.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
