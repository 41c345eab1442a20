"""Credit grants: given by the early-stage program (or goodwill), spent oldest-first on invoices."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services.audit import audit_record
from billing.choices import CreditSource, LedgerKind, LineKind
from billing.models import CreditGrant, Invoice, InvoiceLine
from billing.selectors.balance import charges_not_invoiced
from billing.services.ledger import Posting, ledger_post
from core.money import cents


@transaction.atomic
def credit_grant_create(
    *,
    actor: User | None,
    organization: Organization,
    amount: Decimal,
    expires_at: datetime,
    source: str = CreditSource.EARLY_STAGE,
    note: str = "",
    granted_at: datetime | None = None,
) -> CreditGrant:
    """Give an organization credit worth `amount` until `expires_at`."""
    amount = cents(Decimal(amount))
    if amount <= 0:
        raise ValidationError({"amount": "A credit grant must be worth more than zero."})
    grant = CreditGrant(
        organization=organization,
        source=source,
        amount=amount,
        remaining=amount,
        granted_at=granted_at or timezone.now(),
        expires_at=expires_at,
        granted_by=actor,
        note=note,
    )
    if grant.expires_at <= grant.granted_at:
        raise ValidationError({"expires_at": "A credit grant must expire after it is granted."})
    grant.save()
    ledger_post(
        organization=organization,
        posting=Posting(
            kind=LedgerKind.CREDIT,
            amount=amount,
            description=f"{grant.get_source_display()} credit until {expires_at:%Y-%m-%d}",
            credit_grant_id=grant.pk,
        ),
        actor=actor,
        at=grant.granted_at,
    )
    audit_record(
        actor=actor,
        action="credit_grant.create",
        obj=grant,
        organization=organization,
        after={"amount": str(amount), "expires_at": expires_at.isoformat(), "source": source},
    )
    return grant


def credits_apply(*, invoice: Invoice, due: Decimal, next_position: int) -> list[InvoiceLine]:
    """Spend the organization's grants on `due`, oldest first, never below zero (inside a transaction).

    A grant pays for a month it was valid in: granted before the month ended, expiring after it began.
    """
    grants = CreditGrant.objects.select_for_update().filter(
        organization_id=invoice.organization_id,
        remaining__gt=0,
        granted_at__lt=invoice.period_end,
        expires_at__gt=invoice.period_start,
    )
    lines: list[InvoiceLine] = []
    for grant in grants.order_by("granted_at", "id"):
        if due <= 0:
            break
        spent = min(grant.remaining, due)
        grant.remaining -= spent
        grant.save(update_fields=["remaining"])
        due -= spent
        lines.append(_credit_line(invoice, grant, spent, next_position + len(lines)))
    InvoiceLine.objects.bulk_create(lines)
    return lines


def _credit_line(invoice: Invoice, grant: CreditGrant, spent: Decimal, position: int) -> InvoiceLine:
    return InvoiceLine(
        invoice=invoice,
        position=position,
        kind=LineKind.PROGRAM_CREDIT,
        description=f"{grant.get_source_display()} credit (granted {grant.granted_at:%Y-%m-%d})",
        credit_grant=grant,
        amount=-spent,
    )


def credits_restore(*, invoice: Invoice) -> Decimal:
    """Give a voided invoice's program credits back to their grants; returns the amount restored."""
    restored = Decimal("0.00")
    spent = invoice.lines.filter(kind=LineKind.PROGRAM_CREDIT).values_list("credit_grant_id", "amount")
    for grant_id, amount in spent:
        # One UPDATE adds in the database under the row's lock, so a concurrent spend is not lost.
        CreditGrant.objects.filter(pk=grant_id).update(remaining=F("remaining") - amount)
        restored -= amount
    return restored


def credits_expire(*, now: datetime | None = None) -> int:
    """Take each expired grant's unspent credit out of the balance, once; returns how many expired.

    What the grant will still pay on the invoice of a month not yet closed (charges so far, oldest
    grant first) stays on it; the rest leaves the balance as a `credit_expiry` entry.
    """
    now = now or timezone.now()
    due = CreditGrant.objects.filter(expires_at__lte=now, expired_at__isnull=True).values_list(
        "pk", flat=True
    )
    return sum(_expire(grant_id=grant_id, now=now) for grant_id in list(due))


@transaction.atomic
def _expire(*, grant_id: int, now: datetime) -> int:
    grant = CreditGrant.objects.select_for_update().get(pk=grant_id)
    if grant.expired_at is not None:
        return 0  # another sweeper got there first
    older = CreditGrant.objects.filter(
        organization_id=grant.organization_id, remaining__gt=0, granted_at__lt=grant.granted_at
    ).aggregate(total=Sum("remaining"))["total"] or Decimal("0.00")
    pending = max(Decimal("0.00"), charges_not_invoiced(grant.organization, now) - older)
    keeps = min(grant.remaining, cents(pending))
    unspent = grant.remaining - keeps
    grant.remaining, grant.expired_at = keeps, now
    grant.save(update_fields=["remaining", "expired_at"])
    if unspent > 0:
        ledger_post(
            organization=grant.organization_id,
            posting=Posting(
                kind=LedgerKind.CREDIT_EXPIRY,
                amount=-unspent,
                description=f"Unspent {grant.get_source_display().lower()} credit expired",
                credit_grant_id=grant.pk,
            ),
            at=now,
        )
    audit_record(
        actor=None,
        action="credit_grant.expire",
        obj=grant,
        organization=grant.organization,
        after={"unspent": str(unspent), "kept_for_open_charges": str(keeps)},
    )
    return 1
