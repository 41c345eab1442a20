"""Reserved leases are commitments: charged for their whole window when booked, refunded only when
cancelled in time (RESERVED_FREE_CANCEL before the start) or when the lease never started.

Billing's answer to clusters' `Charging` calls (clusters/services/charging.py): each runs inside
the booking service's transaction, so a lease and its commitment are written together or not at
all. One ledger entry per commitment, recorded under the lease's id, so a retried call charges once.
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from accounts.services.audit import audit_record
from billing.choices import InvoiceKind, InvoiceStatus, LedgerKind, PaymentTerms
from billing.models import Invoice, LedgerEntry
from billing.selectors.balance import account_of, usage_not_yet_debited
from billing.services.invoicing import credit_note_create
from billing.services.ledger import Posting, ledger_post, ledger_post_here
from billing.services.payment import Standing, commitment_of, payment_check
from clusters.choices import LeaseKind
from clusters.models import Lease
from clusters.selectors.capacity import Window
from clusters.services.booking import BookingAttempt
from core.periods import month_of

ZERO = Decimal("0.00")


# Where the payment check leaves what it judged, for the booking's commitment (its findings).
STANDING = "billing.standing"


def booking_payment_check(attempt: BookingAttempt) -> None:
    """Billing's `booking_check`: a way to pay, the spend limit, the credit limit (402 otherwise).

    What it read (the account, usage not yet debited) is left in the attempt's findings: the
    commitment's floor is the same figures, so the booking reads them once.
    """
    attempt.findings[STANDING] = payment_check(
        organization=attempt.organization,
        kind=attempt.kind,
        gpus=attempt.gpus,
        window=attempt.window,
        price=attempt.price_per_gpu_hour,
        now=timezone.now(),
    )


class LeaseCharges:
    """Billing's `Charging`: commitments and their refunds."""

    def lease_booked(
        self, *, lease: Lease, actor: User | None, findings: Mapping[str, object] | None = None
    ) -> None:
        if lease.kind == LeaseKind.RESERVED:
            # Charged as of the booking: its month's invoice bills it.
            standing = (findings or {}).get(STANDING)
            _commit(
                lease,
                lease.start,
                actor,
                lease.created_at,
                external_id=f"lease-{lease.public_id}",
                standing=standing if isinstance(standing, Standing) else None,
            )

    def lease_extended(self, *, lease: Lease, old_end: datetime, actor: User | None) -> None:
        external_id = f"lease-{lease.public_id}-from-{old_end:%Y%m%dT%H%M}"
        _commit(lease, old_end, actor, timezone.now(), external_id=external_id)

    def lease_cancelled(self, *, lease: Lease, actor: User | None, at: datetime) -> None:
        if lease.kind != LeaseKind.RESERVED:
            return
        if at > lease.start - settings.RESERVED_FREE_CANCEL:
            # Cancelled too late: the commitment stands (the booking page says so before booking).
            return
        _refund(lease, actor, at, "Reservation cancelled in time: commitment refunded")

    def lease_failed(self, *, lease: Lease) -> None:
        _refund(lease, None, timezone.now(), "Lease could not start: commitment refunded")


def _commit(
    lease: Lease,
    start: datetime,
    actor: User | None,
    now: datetime,
    *,
    external_id: str,
    standing: Standing | None = None,
) -> None:
    """Charge the window from `start` to the lease's end, in the caller's transaction (booking's or
    extending's, which roll back whole when it refuses: no savepoint of its own)."""
    assert lease.end is not None
    window = Window(start=start, end=lease.end)
    amount = commitment_of(kind=lease.kind, gpus=lease.gpus, window=window, price=lease.price_per_gpu_hour)
    if amount <= 0:
        return
    organization = lease.organization
    standing = standing or Standing(
        account=account_of(organization), not_yet_debited=usage_not_yet_debited(organization, now)
    )
    ledger_post_here(
        organization=organization,
        posting=Posting(
            kind=LedgerKind.COMMITMENT,
            amount=-amount,
            description=f"Reserved {lease.gpus}× H100 in {lease.region.code}, "
            f"{start:%Y-%m-%d %H:%M}–{lease.end:%Y-%m-%d %H:%M} UTC",
            floor=_floor(standing),
            period_start=month_of(now),
            covers_until=lease.end,
            lease_id=lease.pk,
            external_id=external_id,
        ),
        actor=actor,
        at=now,
    )


def _floor(standing: Standing) -> Decimal:
    """How low a commitment may take the balance: usage not yet debited must stay covered.

    The balance is re-read under the account's lock when the entry is written; the usage is the
    payment check's figure, read a moment before in the same transaction. A debit committed in
    between lowers the balance and that usage alike, so the floor can only be stricter, never looser.
    """
    account = standing.account
    limit = account.credit_limit if account.terms == PaymentTerms.INVOICED else ZERO
    return standing.not_yet_debited.quantize(Decimal("0.01")) - limit


def _refund(lease: Lease, actor: User | None, at: datetime, reason: str) -> None:
    charged = LedgerEntry.objects.filter(lease=lease, kind=LedgerKind.COMMITMENT)
    total = -(charged.aggregate(total=Sum("amount"))["total"] or ZERO)
    if total <= 0:
        return
    months = {month for month in charged.values_list("period_start", flat=True) if month is not None}
    invoiced = Invoice.objects.filter(
        organization_id=lease.organization_id, kind=InvoiceKind.INVOICE, period_start__in=months
    ).exclude(status=InvoiceStatus.VOID)
    note = _credit_note_for(invoiced.first(), total, reason, actor) if invoiced.exists() else None
    entry = ledger_post(
        organization=lease.organization_id,
        posting=Posting(
            kind=LedgerKind.COMMITMENT_REFUND,
            amount=total,
            description=f"{reason} (lease {str(lease.public_id)[:8]})",
            # Refunded before its month is invoiced: that invoice nets the two. After: a credit note.
            period_start=None if note else month_of(min(months)),
            lease_id=lease.pk,
            invoice_id=note.pk if note else None,
            external_id=f"lease-{lease.public_id}-refund",
        ),
        actor=actor,
        at=at,
    )
    if entry is not None:
        audit_record(
            actor=actor,
            action="commitment.refund",
            obj=lease,
            organization=lease.organization,
            after={"amount": str(total), "reason": reason, "credit_note": note.number if note else None},
        )


def _credit_note_for(
    invoice: Invoice | None, amount: Decimal, reason: str, actor: User | None
) -> Invoice | None:
    if invoice is None:
        return None
    return credit_note_create(
        actor=actor, invoice=invoice, amount=amount, reason=reason, post_to_ledger=False
    )
