"""Invoices: month close, finalization with gapless numbers, payment, voiding and credit notes."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services.audit import audit_record
from billing.choices import INVOICE_NUMBER_PREFIX, InvoiceKind, InvoiceStatus, LineKind
from billing.models import CreditGrant, Invoice, InvoiceLine, MonthClose, UsageHour
from billing.selectors.sla import SlaCredit, sla_credits_between
from billing.services.credits import credits_apply, credits_restore
from billing.services.metering import usage_meter
from billing.services.numbering import reserve_numbers
from billing.services.refusals import CreditNoteTooLarge, InvoiceStateError, MonthNotOver
from core.money import amount_for, cents, gpu_hours
from core.periods import next_month

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class CloseResult:
    """What one month close did: invoices created now, and how many were already there."""

    period_start: datetime
    invoices_created: int
    invoices_existing: int
    finalized: int


def month_close(
    *, period_start: datetime, actor: User | None = None, finalize: bool = True, now: datetime | None = None
) -> CloseResult:
    """Meter the month, then give each organization with usage one invoice; a second close does nothing."""
    now = now or timezone.now()
    period_end = next_month(period_start)
    if period_end > now:
        raise MonthNotOver(
            f"{period_start:%Y-%m} is not over yet; it can be closed from {period_end:%Y-%m-%d}."
        )
    usage_meter(start=period_start, end=period_end, now=now)
    return _close(period_start, period_end, actor, finalize, now)


@transaction.atomic
def _close(start: datetime, end: datetime, actor: User | None, finalize: bool, now: datetime) -> CloseResult:
    MonthClose.objects.bulk_create([MonthClose(period_start=start)], ignore_conflicts=True)
    close = MonthClose.objects.select_for_update().get(period_start=start)
    existing = set(
        Invoice.objects.filter(kind=InvoiceKind.INVOICE, period_start=start).values_list(
            "organization_id", flat=True
        )
    )
    drafts = _build_drafts(start, end, existing)
    if finalize and drafts:
        _finalize_many(drafts, actor, now)
    close.finished_at, close.invoices_created = now, close.invoices_created + len(drafts)
    close.save(update_fields=["finished_at", "invoices_created"])
    audit_record(actor=actor, action="month.close", obj=close, after={"invoices_created": len(drafts)})
    return CloseResult(start, len(drafts), len(existing), len(drafts) if finalize else 0)


def _usage_by_lease(start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = UsageHour.objects.filter(hour__gte=start, hour__lt=end).values(
        "organization_id",
        "lease_id",
        "region_id",
        "price_per_gpu_hour",
        "lease__public_id",
        "lease__gpus",
        "lease__kind",
        "lease__start",
        "region__code",
    )
    totals = rows.annotate(secs=Sum("gpu_seconds"), exact=Sum(F("gpu_seconds") * F("price_per_gpu_hour")))
    return [dict(row) for row in totals.order_by("organization_id", "lease__start", "lease_id")]


def _build_drafts(start: datetime, end: datetime, skip: set[int]) -> list[Invoice]:
    """Bulk-create draft invoices and their usage and SLA lines for organizations not yet invoiced."""
    usage: dict[int, list[dict]] = defaultdict(list)
    for row in _usage_by_lease(start, end):
        if row["organization_id"] not in skip:
            usage[row["organization_id"]].append(row)
    credits: dict[int, list[SlaCredit]] = defaultdict(list)
    for credit in sla_credits_between(start, end):
        credits[credit.organization_id].append(credit)
    invoices = Invoice.objects.bulk_create(
        Invoice(organization_id=org, period_start=start, period_end=end) for org in usage
    )
    lines: list[InvoiceLine] = []
    for invoice in invoices:
        lines.extend(_lines_for(invoice, usage[invoice.organization_id], credits[invoice.organization_id]))
    InvoiceLine.objects.bulk_create(lines, batch_size=5000)
    Invoice.objects.bulk_update(invoices, ["subtotal", "credits", "total"], batch_size=2000)
    return invoices


def _lines_for(invoice: Invoice, usage: list[dict], sla: list[SlaCredit]) -> list[InvoiceLine]:
    lines = [_usage_line(invoice, position, row) for position, row in enumerate(usage, start=1)]
    usage_of = {line.lease_id: line.amount for line in lines}
    for credit in sla:
        # A lease is never credited more than it was billed, whatever the rounding of its credits.
        amount = min(credit.amount, usage_of.get(credit.lease_id, ZERO))
        usage_of[credit.lease_id] = usage_of.get(credit.lease_id, ZERO) - amount
        if amount > 0:
            lines.append(_sla_line(invoice, len(lines) + 1, credit, amount))
    invoice.subtotal = sum((line.amount for line in lines if line.kind == LineKind.USAGE), ZERO)
    invoice.credits = -sum((line.amount for line in lines if line.kind != LineKind.USAGE), ZERO)
    invoice.total = invoice.subtotal - invoice.credits
    return lines


def _usage_line(invoice: Invoice, position: int, row: dict) -> InvoiceLine:
    return InvoiceLine(
        invoice=invoice,
        position=position,
        kind=LineKind.USAGE,
        description=f"{row['lease__gpus']}× H100 {row['lease__kind'].replace('_', '-')} in "
        f"{row['region__code']}, lease {str(row['lease__public_id'])[:8]}",
        lease_id=row["lease_id"],
        region_id=row["region_id"],
        gpus=row["lease__gpus"],
        gpu_hours=gpu_hours(row["secs"]),
        price_per_gpu_hour=row["price_per_gpu_hour"],
        amount=amount_for(row["exact"]),
    )


def _sla_line(invoice: Invoice, position: int, credit: SlaCredit, amount: Decimal) -> InvoiceLine:
    return InvoiceLine(
        invoice=invoice,
        position=position,
        kind=LineKind.SLA_CREDIT,
        description=f"SLA credit: node unhealthy during the lease, event {credit.health_event_public_id[:8]}",
        lease_id=credit.lease_id,
        region_id=credit.region_id,
        health_event_id=credit.health_event_id,
        gpu_hours=gpu_hours(credit.gpu_seconds),
        price_per_gpu_hour=credit.price,
        amount=-amount,
    )


def _finalize_many(invoices: list[Invoice], actor: User | None, now: datetime) -> None:
    """Finalize drafts in one transaction: credits, one locked run of consecutive numbers, audit."""
    series = INVOICE_NUMBER_PREFIX[InvoiceKind.INVOICE]
    numbers = reserve_numbers(series=series, year=now.year, count=len(invoices))
    with_grants = set(
        CreditGrant.objects.filter(
            organization_id__in=[i.organization_id for i in invoices], remaining__gt=0
        ).values_list("organization_id", flat=True)
    )
    for invoice, number in zip(invoices, numbers, strict=True):
        if invoice.organization_id in with_grants:
            _apply_credits(invoice)
        _mark_open(invoice, number, now)
    Invoice.objects.bulk_update(
        invoices, ["status", "number", "issued_at", "paid_at", "credits", "total"], batch_size=2000
    )
    organizations = Organization.objects.in_bulk({invoice.organization_id for invoice in invoices})
    for invoice in invoices:
        _audit_finalized(invoice, actor, organizations[invoice.organization_id])
    _after_finalize([invoice.pk for invoice in invoices])


def _apply_credits(invoice: Invoice) -> None:
    position = invoice.lines.count() + 1
    applied = credits_apply(invoice=invoice, due=invoice.total, next_position=position)
    spent = -sum((line.amount for line in applied), ZERO)
    invoice.credits += spent
    invoice.total -= spent


def _mark_open(invoice: Invoice, number: str, now: datetime) -> None:
    invoice.status, invoice.number, invoice.issued_at = InvoiceStatus.OPEN, number, now
    if invoice.total == 0:
        # Fully covered by credits: nothing to collect, so it is paid as it is issued.
        invoice.status, invoice.paid_at = InvoiceStatus.PAID, now


def _audit_finalized(invoice: Invoice, actor: User | None, organization: Organization) -> None:
    audit_record(
        actor=actor,
        action="invoice.finalize",
        obj=invoice,
        organization=organization,
        before={"status": InvoiceStatus.DRAFT},
        after={"status": invoice.status, "number": invoice.number, "total": str(invoice.total)},
    )


def _after_finalize(invoice_ids: list[int]) -> None:
    from billing import tasks

    def queue() -> None:
        for invoice_id in invoice_ids:
            tasks.invoice_render_pdf.delay(invoice_id)
            if settings.STRIPE_ENABLED:
                tasks.invoice_push_to_stripe.delay(invoice_id)

    transaction.on_commit(queue)


def _locked(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice.pk)


@transaction.atomic
def invoice_finalize(*, actor: User | None, invoice: Invoice, now: datetime | None = None) -> Invoice:
    """Draft → open: apply credits, take the next number of the year, freeze the invoice."""
    invoice = _locked(invoice)
    if invoice.status != InvoiceStatus.DRAFT:
        raise InvoiceStateError(f"Only a draft can be finalized; invoice {invoice} is {invoice.status}.")
    _finalize_many([invoice], actor, now or timezone.now())
    return invoice


@transaction.atomic
def invoice_mark_paid(
    *, actor: User | None, invoice: Invoice, paid_at: datetime | None = None, via: str = "manual"
) -> Invoice:
    """Open → paid."""
    invoice = _locked(invoice)
    if invoice.status != InvoiceStatus.OPEN:
        raise InvoiceStateError(f"Only an open invoice can be paid; {invoice} is {invoice.status}.")
    invoice.status, invoice.paid_at = InvoiceStatus.PAID, paid_at or timezone.now()
    invoice.save(update_fields=["status", "paid_at"])
    _audit_transition(actor, invoice, InvoiceStatus.OPEN, via=via)
    return invoice


@transaction.atomic
def invoice_void(*, actor: User | None, invoice: Invoice, reason: str, via: str = "manual") -> Invoice:
    """Open → void: the number stays taken and program credits go back to their grants."""
    invoice = _locked(invoice)
    if invoice.status != InvoiceStatus.OPEN:
        raise InvoiceStateError(f"Only an open invoice can be voided; {invoice} is {invoice.status}.")
    restored = credits_restore(invoice=invoice)
    invoice.status, invoice.voided_at, invoice.note = InvoiceStatus.VOID, timezone.now(), reason[:300]
    invoice.save(update_fields=["status", "voided_at", "note"])
    _audit_transition(
        actor, invoice, InvoiceStatus.OPEN, via=via, reason=reason, credits_restored=str(restored)
    )
    return invoice


def _audit_transition(actor: User | None, invoice: Invoice, before: str, **extra: str) -> None:
    audit_record(
        actor=actor,
        action=f"invoice.{invoice.status}",
        obj=invoice,
        organization=invoice.organization,
        before={"status": before},
        after={"status": invoice.status, **extra},
    )


@transaction.atomic
def credit_note_create(*, actor: User | None, invoice: Invoice, amount: Decimal, reason: str) -> Invoice:
    """A correction of a finalized invoice: a new, numbered credit note; the invoice itself never changes."""
    invoice = _locked(invoice)
    if invoice.kind != InvoiceKind.INVOICE or invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
        raise InvoiceStateError(
            f"Only an open or paid invoice can be credited; {invoice} is {invoice.status}."
        )
    amount = cents(Decimal(amount))
    credited = invoice.credit_notes.exclude(status=InvoiceStatus.VOID).aggregate(s=Sum("total"))["s"] or ZERO
    if amount <= 0 or amount > invoice.total - credited:
        raise CreditNoteTooLarge(f"A credit note must be between 0.01 and {invoice.total - credited} USD.")
    now = timezone.now()
    series = INVOICE_NUMBER_PREFIX[InvoiceKind.CREDIT_NOTE]
    note = Invoice.objects.create(
        organization_id=invoice.organization_id,
        kind=InvoiceKind.CREDIT_NOTE,
        status=InvoiceStatus.OPEN,
        number=reserve_numbers(series=series, year=now.year, count=1)[0],
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        subtotal=amount,
        total=amount,
        corrects=invoice,
        note=reason[:300],
        issued_at=now,
    )
    InvoiceLine.objects.create(
        invoice=note,
        position=1,
        kind=LineKind.CORRECTION,
        description=f"Correction of {invoice}: {reason}"[:300],
        amount=amount,
    )
    audit_record(
        actor=actor,
        action="credit_note.create",
        obj=note,
        organization=invoice.organization,
        after={"number": note.number, "corrects": invoice.number, "amount": str(amount), "reason": reason},
    )
    _after_finalize([note.pk])
    return note
