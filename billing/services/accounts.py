"""An organization's billing account: the owner's limits and automatic top-up, staff's terms, suspension."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services.audit import audit_record
from billing.choices import PaymentTerms
from billing.models import BillingAccount
from billing.selectors.balance import month_spend
from billing.services.ledger import account_locked

SETTINGS_FIELDS = (
    "monthly_spend_limit",
    "low_balance_threshold",
    "auto_top_up_threshold",
    "auto_top_up_amount",
)


def _snapshot(account: BillingAccount, fields: tuple[str, ...]) -> dict[str, str | None]:
    return {name: None if getattr(account, name) is None else str(getattr(account, name)) for name in fields}


@dataclass(frozen=True)
class SpendSettings:
    """What an owner sets: a monthly spend limit, a low-balance warning, automatic top-up (None: off)."""

    monthly_spend_limit: Decimal | None
    low_balance_threshold: Decimal | None
    auto_top_up_threshold: Decimal | None
    auto_top_up_amount: Decimal | None


@transaction.atomic
def account_settings_update(
    *, actor: User, organization: Organization, wanted: SpendSettings, now: datetime | None = None
) -> BillingAccount:
    """Set the spend limit, warning threshold and automatic top-up; a ValidationError names each bad field."""
    account = account_locked(organization)
    _validate(organization, wanted, now or timezone.now())
    before = _snapshot(account, SETTINGS_FIELDS)
    for name in SETTINGS_FIELDS:
        setattr(account, name, getattr(wanted, name))
    # A fresh setting is a fresh start: declined attempts no longer stop automatic top-up.
    account.auto_top_up_failures = 0
    account.save(update_fields=[*SETTINGS_FIELDS, "auto_top_up_failures"])
    audit_record(
        actor=actor,
        action="billing.settings",
        obj=account,
        organization=organization,
        before=before,
        after=_snapshot(account, SETTINGS_FIELDS),
    )
    return account


def _validate(organization: Organization, wanted: SpendSettings, now: datetime) -> None:
    errors: dict[str, str] = {}
    low, high = Decimal(settings.TOP_UP_MIN_USD), Decimal(settings.TOP_UP_MAX_USD)
    limit = wanted.monthly_spend_limit
    for name in SETTINGS_FIELDS:
        value = getattr(wanted, name)
        if value is not None and value < 0:
            errors[name] = "Must be zero or more."
    if limit is not None and "monthly_spend_limit" not in errors:
        committed = month_spend(organization, now)
        if limit < committed:
            errors["monthly_spend_limit"] = (
                f"This month's spend is already {committed} USD; the limit cannot be below it."
            )
    amount, threshold = wanted.auto_top_up_amount, wanted.auto_top_up_threshold
    if (amount is None) != (threshold is None):
        field = "auto_top_up_amount" if amount is None else "auto_top_up_threshold"
        errors[field] = "Automatic top-up needs both a threshold and an amount (or neither)."
    if amount is not None and not low <= amount <= high:
        errors["auto_top_up_amount"] = f"A top-up is between {low} and {high} USD."
    for name in ("auto_top_up_threshold", "low_balance_threshold"):
        value = getattr(wanted, name)
        if value is not None and name not in errors and value > high:
            errors[name] = f"A threshold may be at most {high} USD (the largest top-up)."
        elif value is not None and name not in errors and limit is not None and value > limit:
            errors[name] = f"A threshold may not be above the monthly spend limit ({limit} USD)."
    if errors:
        raise ValidationError(errors)


TERMS_FIELDS = ("terms", "net_days", "credit_limit")


@transaction.atomic
def account_set_terms(
    *,
    actor: User | None,
    organization: Organization,
    terms: str,
    net_days: int | None = None,
    credit_limit: Decimal,
) -> BillingAccount:
    """Staff finance: prepaid, or invoice terms with net days and a credit limit."""
    errors: dict[str, str] = {}
    if terms not in PaymentTerms.values:
        errors["terms"] = f"One of: {', '.join(PaymentTerms.values)}."
    if credit_limit < 0:
        errors["credit_limit"] = "Must be zero or more."
    if net_days is not None and not 0 <= net_days <= 120:
        errors["net_days"] = "Between 0 and 120 days."
    if errors:
        raise ValidationError(errors)
    account = account_locked(organization)
    before = _snapshot(account, TERMS_FIELDS)
    account.terms, account.credit_limit = terms, credit_limit
    account.net_days = settings.INVOICE_NET_DAYS if net_days is None else net_days
    account.save(update_fields=list(TERMS_FIELDS))
    audit_record(
        actor=actor,
        action="billing.terms",
        obj=account,
        organization=organization,
        before=before,
        after=_snapshot(account, TERMS_FIELDS),
    )
    return account


@transaction.atomic
def account_suspend(*, actor: User | None, organization: Organization, reason: str) -> bool:
    """No new bookings; on-demand leases released after notice (balances_watch). False if already so."""
    changed = BillingAccount.objects.filter(
        pk=account_locked(organization).pk, suspended_at__isnull=True
    ).update(suspended_at=timezone.now(), suspended_reason=reason[:200])
    if changed:
        audit_record(
            actor=actor,
            action="billing.suspend",
            obj=BillingAccount(pk=organization.pk),
            organization=organization,
            after={"reason": reason},
        )
    return bool(changed)


@transaction.atomic
def account_lift_suspension(*, actor: User | None, organization: Organization, reason: str) -> bool:
    """Bookings allowed again; False if it was not suspended."""
    account = account_locked(organization)
    if account.suspended_at is None:
        return False
    before = {"suspended_reason": account.suspended_reason}
    account.suspended_at, account.suspended_reason = None, ""
    account.save(update_fields=["suspended_at", "suspended_reason"])
    audit_record(
        actor=actor,
        action="billing.lift_suspension",
        obj=account,
        organization=organization,
        before=before,
        after={"reason": reason},
    )
    return True
