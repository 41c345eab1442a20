"""Money paid in: a top-up recorded once in the ledger, whoever reports it first (Stripe's answer to
our call, its webhook, or staff recording a bank transfer)."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services.audit import audit_record
from billing.choices import LedgerKind, TopUpStatus
from billing.models import BillingAccount, LedgerEntry, TopUp
from billing.services.ledger import Posting, ledger_post
from core.money import cents

# The running-out warnings of an episode; money coming in starts a new one.
EPISODE_COLUMNS = ("low_balance_warned_at", "runway_24h_warned_at", "runway_1h_warned_at", "exhausted_at")


def top_up_amount(value: Decimal | str | int | None, *, field: str = "amount") -> Decimal:
    """A top-up's amount in USD, or a ValidationError naming the field."""
    try:
        amount = cents(Decimal(str(value)))
    except ArithmeticError:
        raise ValidationError({field: "Give an amount in USD, such as 100 or 250.50."}) from None
    low, high = Decimal(settings.TOP_UP_MIN_USD), Decimal(settings.TOP_UP_MAX_USD)
    if not low <= amount <= high:
        raise ValidationError({field: f"A top-up is between {low} and {high} USD."})
    return amount


@transaction.atomic
def top_up_record(
    *,
    organization: Organization | int,
    amount: Decimal,
    external_id: str,
    description: str,
    actor: User | None = None,
    top_up: TopUp | None = None,
    at: datetime | None = None,
) -> LedgerEntry | None:
    """Add paid money to the balance once per `external_id`; None when it was already recorded."""
    at = at or timezone.now()
    entry = ledger_post(
        organization=organization,
        posting=Posting(
            kind=LedgerKind.TOP_UP, amount=amount, description=description, external_id=external_id
        ),
        actor=actor,
        at=at,
    )
    if entry is None:
        return None
    BillingAccount.objects.filter(pk=entry.organization_id).update(
        **dict.fromkeys(EPISODE_COLUMNS), auto_top_up_failures=0
    )
    if top_up is not None:
        TopUp.objects.filter(pk=top_up.pk).update(status=TopUpStatus.SUCCEEDED, settled_at=at, failure="")
    audit_record(
        actor=actor,
        action="balance.top_up",
        obj=entry,
        organization=Organization.objects.get(pk=entry.organization_id),
        after={"amount": str(entry.amount), "balance": str(entry.balance_after), "external_id": external_id},
    )
    return entry
