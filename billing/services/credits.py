"""Credit grants: given by the early-stage program (or goodwill), spent oldest-first on invoices."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services.audit import audit_record
from billing.choices import CreditSource, LineKind
from billing.models import CreditGrant, Invoice, InvoiceLine
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
