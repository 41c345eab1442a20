"""Whether an organization may book now, as money sees it: a way to pay, its limits, its standing."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.urls import reverse

from accounts.models import Organization
from billing.choices import PaymentTerms
from billing.models import BillingAccount
from billing.selectors.balance import account_of, credit_left, month_spend, usage_not_yet_debited
from billing.services.refusals import (
    AccountSuspended,
    BalanceExhausted,
    CreditLimitReached,
    InsufficientBalance,
    PaymentRequired,
    SpendLimitReached,
)
from clusters.choices import LeaseKind
from clusters.selectors.capacity import Window
from core.money import amount_for, cents
from core.periods import month_of

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Standing:
    """What the payment check judged a booking against: the account, and usage not yet debited."""

    account: BillingAccount
    not_yet_debited: Decimal


def commitment_of(*, kind: str, gpus: int, window: Window, price: Decimal) -> Decimal:
    """What booking commits to: a reserved lease's whole window at its price, rounded once; on-demand 0."""
    if kind != LeaseKind.RESERVED or window.end is None:
        return ZERO
    # As a quote computes it (clusters/selectors/prices.py): exact minutes, rounded once.
    minutes = Decimal((window.end - window.start).total_seconds() // 60)
    return amount_for(price * gpus * minutes * 60)


def billing_page() -> str:
    return f"{settings.SITE_URL}{reverse('billing')}"


def payment_check(
    *, organization: Organization, kind: str, gpus: int, window: Window, price: Decimal, now: datetime
) -> Standing:
    """Raise the refusal (402) that stops this booking, if any; otherwise what it was judged against."""
    account = account_of(organization)
    if account.suspended_at is not None:
        raise AccountSuspended(
            f"Bookings are suspended: {account.suspended_reason or 'an invoice is overdue'}. "
            f"Pay what is due on {billing_page()} or contact support."
        )
    not_yet_debited = usage_not_yet_debited(organization, now)
    available = account.balance - not_yet_debited
    commitment = commitment_of(kind=kind, gpus=gpus, window=window, price=price)
    if account.terms == PaymentTerms.INVOICED:
        _check_credit_limit(account, available, commitment)
    else:
        _check_prepaid(account, organization, available, commitment, now)
    _check_spend_limit(account, organization, kind, gpus, window, price, commitment, now)
    return Standing(account=account, not_yet_debited=not_yet_debited)


def _check_prepaid(
    account: BillingAccount,
    organization: Organization,
    available: Decimal,
    commitment: Decimal,
    now: datetime,
) -> None:
    may_pay = account.has_card or account.balance > 0 or credit_left(organization, now) > 0
    if not may_pay:
        raise PaymentRequired(
            f"Add a card or top up your balance before booking: {billing_page()} (Add a card, or Top up)."
        )
    if commitment > 0 and available < commitment:
        raise InsufficientBalance(
            f"A reserved lease is paid when booked: this one costs {commitment} USD and "
            f"{max(available, ZERO)} USD is available. Top up at least {commitment - available} USD "
            f"on {billing_page()}.",
            needed=str(commitment),
            available=str(available),
        )
    if commitment == 0 and available <= 0 and not _auto_top_up_on(account):
        raise BalanceExhausted(
            f"The balance has run out ({available} USD). Top up on {billing_page()} "
            "or turn on automatic top-up to book on demand."
        )


def _auto_top_up_on(account: BillingAccount) -> bool:
    return (
        account.has_card
        and account.auto_top_up_amount is not None
        and account.auto_top_up_failures < settings.AUTO_TOP_UP_MAX_ATTEMPTS
    )


def _check_credit_limit(account: BillingAccount, available: Decimal, commitment: Decimal) -> None:
    owed = max(ZERO, -available) + commitment
    if owed > account.credit_limit:
        raise CreditLimitReached(
            f"This would bring what the organization owes to {owed} USD, above its credit limit of "
            f"{account.credit_limit} USD. Pay an open invoice or ask for a higher limit.",
            credit_limit=str(account.credit_limit),
        )


def _check_spend_limit(
    account: BillingAccount,
    organization: Organization,
    kind: str,
    gpus: int,
    window: Window,
    price: Decimal,
    commitment: Decimal,
    now: datetime,
) -> None:
    limit = account.monthly_spend_limit
    if limit is None:
        return
    spent = month_spend(organization, now)
    # A reserved lease adds its commitment; an on-demand one its first hour (it runs until released).
    adds = commitment if commitment > 0 else cents(price * gpus)
    if month_of(window.start) != month_of(now) and commitment == 0:
        adds = ZERO
    if spent + adds > limit:
        raise SpendLimitReached(
            f"This month's spend is {spent} USD; this booking adds {adds} USD, past the monthly spend "
            f"limit of {limit} USD. An owner can raise the limit on {billing_page()}.",
            spend_limit=str(limit),
            month_spend=str(spent),
        )
