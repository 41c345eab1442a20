"""Invoices: month close, finalization with gapless numbers, payment, voiding and credit notes."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import AuditEntry, Organization, User
from accounts.services.audit import audit_entry, audit_record
from billing.choices import (
    CHARGE_LINES,
    INVOICE_NUMBER_PREFIX,
    InvoiceKind,
    InvoiceStatus,
    LedgerKind,
    LineKind,
    PaymentTerms,
)
from billing.models import (
    BillingAccount,
    CreditGrant,
    Invoice,
    InvoiceLine,
    LedgerEntry,
    MonthClose,
    UsageHour,
)
from billing.selectors.sla import SlaCredit, sla_credits_between
from billing.services.credits import credits_apply, credits_restore
from billing.services.debits import usage_debit_month
from billing.services.ledger import Posting, ledger_post
from billing.services.metering import usage_meter
from billing.services.numbering import reserve_numbers
from billing.services.refusals import CreditNoteTooLarge, InvoiceStateError, MonthNotOver
from clusters.choices import LeaseKind
from clusters.models import Lease, Region
from core.money import amount_for, cents, gpu_hours
from core.periods import next_month

ZERO = Decimal("0.00")
PDF_BATCH = 100  # finalized invoices per PDF rendering task


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
    usage_debit_month(period_start=period_start, until=period_end)
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
    """Each on-demand lease's month: its rows summed (grouped on the usage table's own columns, then
    the few lease and region fields joined in Python: grouping by them cost a join per row)."""
    # Reserved leases are billed by their commitments (see _commitments_by_org), not by the hour.
    on_demand = Lease.objects.filter(kind=LeaseKind.ON_DEMAND)
    rows = UsageHour.objects.filter(hour__gte=start, hour__lt=end, lease__in=on_demand.values("pk"))
    totals = rows.values("organization_id", "lease_id", "region_id", "price_per_gpu_hour").annotate(
        secs=Sum("gpu_seconds"), exact=Sum(F("gpu_seconds") * F("price_per_gpu_hour"))
    )
    found: list[dict[str, Any]] = [dict(row) for row in totals]
    leases = on_demand.filter(pk__in={row["lease_id"] for row in found}).only(
        "public_id", "gpus", "kind", "start"
    )
    lease_of = {lease.pk: lease for lease in leases}
    codes = dict(Region.objects.values_list("pk", "code"))
    for row in found:
        lease = lease_of[row["lease_id"]]
        row.update(
            lease__public_id=lease.public_id,
            lease__gpus=lease.gpus,
            lease__kind=lease.kind,
            lease__start=lease.start,
            region__code=codes[row["region_id"]],
        )
    found.sort(key=lambda row: (row["organization_id"], row["lease__start"], row["lease_id"]))
    return found


def _commitments_by_org(start: datetime, skip: set[int]) -> dict[int, list[dict]]:
    """The month's commitments and the refunds of those cancelled in time, by organization."""
    rows = LedgerEntry.objects.filter(
        period_start=start,
        kind__in=(LedgerKind.COMMITMENT, LedgerKind.COMMITMENT_REFUND),
        invoice__isnull=True,
    ).values("organization_id", "lease_id", "amount", "description", "lease__region_id", "lease__gpus")
    found: dict[int, list[dict]] = defaultdict(list)
    for row in rows.order_by("organization_id", "sequence"):
        if row["organization_id"] not in skip:
            found[row["organization_id"]].append(dict(row))
    return found


def _build_drafts(start: datetime, end: datetime, skip: set[int]) -> list[Invoice]:
    """Bulk-create drafts with usage, commitment and SLA lines for organizations not yet invoiced."""
    usage: dict[int, list[dict]] = defaultdict(list)
    for row in _usage_by_lease(start, end):
        if row["organization_id"] not in skip:
            usage[row["organization_id"]].append(row)
    commitments = _commitments_by_org(start, skip)
    credits: dict[int, list[SlaCredit]] = defaultdict(list)
    for credit in sla_credits_between(start, end):
        credits[credit.organization_id].append(credit)
    invoices = [
        Invoice(organization_id=org, period_start=start, period_end=end)
        for org in sorted(set(usage) | set(commitments))
    ]
    # Lines and totals first, so each invoice is inserted once with its totals (no second UPDATE).
    lines: list[InvoiceLine] = []
    for invoice in invoices:
        org = invoice.organization_id
        lines.extend(_lines_for(invoice, usage[org], commitments[org], credits[org]))
    Invoice.objects.bulk_create(invoices, batch_size=2000)
    InvoiceLine.objects.bulk_create(lines, batch_size=5000)  # each line takes its invoice's new id
    return invoices


def _lines_for(
    invoice: Invoice, usage: list[dict], commitments: list[dict], sla: list[SlaCredit]
) -> list[InvoiceLine]:
    lines = [_usage_line(invoice, position, row) for position, row in enumerate(usage, start=1)]
    lines += [_commitment_line(invoice, len(lines) + i, row) for i, row in enumerate(commitments, start=1)]
    usage_of: dict[int | None, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        usage_of[line.lease_id] += line.amount
    for credit in sla:
        # A lease is never credited more than it was billed, whatever the rounding of its credits.
        amount = min(credit.amount, usage_of.get(credit.lease_id, ZERO))
        usage_of[credit.lease_id] = usage_of.get(credit.lease_id, ZERO) - amount
        if amount > 0:
            lines.append(_sla_line(invoice, len(lines) + 1, credit, amount))
    invoice.subtotal = sum((line.amount for line in lines if line.kind in CHARGE_LINES), ZERO)
    invoice.credits = -sum((line.amount for line in lines if line.kind not in CHARGE_LINES), ZERO)
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


def _commitment_line(invoice: Invoice, position: int, row: dict) -> InvoiceLine:
    return InvoiceLine(
        invoice=invoice,
        position=position,
        kind=LineKind.COMMITMENT,
        description=row["description"],
        lease_id=row["lease_id"],
        region_id=row["lease__region_id"],
        gpus=row["lease__gpus"],
        amount=-row["amount"],
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
    organization_ids = [i.organization_id for i in invoices]
    terms = {
        pk: (kind, net_days)
        for pk, kind, net_days in BillingAccount.objects.filter(pk__in=organization_ids).values_list(
            "pk", "terms", "net_days"
        )
    }
    with_grants = set(
        CreditGrant.objects.filter(organization_id__in=organization_ids, remaining__gt=0).values_list(
            "organization_id", flat=True
        )
    )
    for invoice, number in zip(invoices, numbers, strict=True):
        if invoice.organization_id in with_grants:
            _apply_credits(invoice)
        kind, net_days = terms.get(invoice.organization_id, (PaymentTerms.PREPAID, settings.INVOICE_NET_DAYS))
        _mark_open(invoice, number, now, kind, net_days)
    _save_finalized(invoices)
    _post_sla_credits(invoices, now)
    organizations = Organization.objects.in_bulk(set(organization_ids))
    AuditEntry.objects.bulk_create(
        (_audit_finalized(invoice, actor, organizations[invoice.organization_id]) for invoice in invoices),
        batch_size=2000,
    )
    _after_finalize([invoice.pk for invoice in invoices])


# One statement for every finalized invoice of a close (Django's bulk_update builds a CASE per row
# and column, which took seconds for 2,000 invoices).
FINALIZED_SQL = """
UPDATE billing_invoice i
SET status = f.status, number = f.number, issued_at = f.issued_at, paid_at = f.paid_at,
    due_at = f.due_at, credits = f.credits, total = f.total
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[],
            %s::timestamptz[], %s::numeric[], %s::numeric[])
    AS f(id, status, number, issued_at, paid_at, due_at, credits, total)
WHERE i.id = f.id
"""


def _save_finalized(invoices: list[Invoice]) -> None:
    columns = ("pk", "status", "number", "issued_at", "paid_at", "due_at", "credits", "total")
    with connection.cursor() as cursor:
        cursor.execute(FINALIZED_SQL, [[getattr(i, name) for i in invoices] for name in columns])


def _apply_credits(invoice: Invoice) -> None:
    position = invoice.lines.count() + 1
    applied = credits_apply(invoice=invoice, due=invoice.total, next_position=position)
    spent = -sum((line.amount for line in applied), ZERO)
    invoice.credits += spent
    invoice.total -= spent


def _mark_open(invoice: Invoice, number: str, now: datetime, terms: str, net_days: int) -> None:
    invoice.status, invoice.number, invoice.issued_at = InvoiceStatus.OPEN, number, now
    if invoice.total == 0 or terms == PaymentTerms.PREPAID:
        # Nothing to collect: covered by credits, or already taken from the prepaid balance.
        invoice.status, invoice.paid_at = InvoiceStatus.PAID, now
    else:
        invoice.due_at = now + timedelta(days=net_days)


def _post_sla_credits(invoices: list[Invoice], now: datetime) -> None:
    """SLA credits go back to the balance when their invoice is issued (program credit is in it already)."""
    sla = (
        InvoiceLine.objects.filter(invoice__in=invoices, kind=LineKind.SLA_CREDIT)
        .values("invoice_id", "invoice__organization_id", "invoice__public_id", "invoice__number")
        .annotate(total=Sum("amount"))
    )
    for row in sla:
        ledger_post(
            organization=row["invoice__organization_id"],
            posting=Posting(
                kind=LedgerKind.SLA_CREDIT,
                amount=-row["total"],
                description=f"SLA credits on invoice {row['invoice__number']}",
                invoice_id=row["invoice_id"],
                external_id=f"sla-{row['invoice__public_id']}",
            ),
            at=now,
        )


def _audit_finalized(invoice: Invoice, actor: User | None, organization: Organization) -> AuditEntry:
    return audit_entry(
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
        # A month close finalizes thousands: sending one message each took most of a second.
        for first in range(0, len(invoice_ids), PDF_BATCH):
            tasks.invoice_render_pdfs.delay(invoice_ids[first : first + PDF_BATCH])
        if settings.STRIPE_ENABLED:
            for invoice_id in invoice_ids:  # one each: a Stripe push is retried on its own
                tasks.invoice_push_to_stripe.delay(invoice_id)

    transaction.on_commit(queue)


def _after_commit_task(name: str, invoice_id: int) -> None:
    from billing import tasks

    if settings.STRIPE_ENABLED:
        transaction.on_commit(lambda: getattr(tasks, name).delay(invoice_id))


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
    if invoice.total > 0:
        # What the invoice asked for is no longer owed (its program credit went back to the grants).
        ledger_post(
            organization=invoice.organization_id,
            posting=Posting(
                kind=LedgerKind.INVOICE_VOID,
                amount=invoice.total,
                description=f"Invoice {invoice.number} voided",
                invoice_id=invoice.pk,
                external_id=f"void-{invoice.public_id}",
            ),
            actor=actor,
        )
    if invoice.stripe_invoice_id and not via.startswith("stripe:"):
        _after_commit_task("invoice_void_in_stripe", invoice.pk)
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
def credit_note_create(
    *, actor: User | None, invoice: Invoice, amount: Decimal, reason: str, post_to_ledger: bool = True
) -> Invoice:
    """A correction of a finalized invoice: a new, numbered credit note; the invoice itself never changes.

    The amount goes back to the organization's balance (an open invoice's customer owes that much
    less); a caller that already wrote its own ledger entry for it (a commitment refund) says so.
    """
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
    # Written as a draft with its line, then finalized: PostgreSQL refuses a line added to an
    # invoice that is already finalized (billing/sql/frozen_invoices.sql).
    note = Invoice.objects.create(
        organization_id=invoice.organization_id,
        kind=InvoiceKind.CREDIT_NOTE,
        status=InvoiceStatus.DRAFT,
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
    note.status = InvoiceStatus.OPEN
    note.save(update_fields=["status"])
    if post_to_ledger:
        ledger_post(
            organization=invoice.organization_id,
            posting=Posting(
                kind=LedgerKind.CREDIT_NOTE,
                amount=amount,
                description=f"Credit note {note.number} on {invoice.number}",
                invoice_id=note.pk,
                external_id=f"credit-note-{note.public_id}",
            ),
            actor=actor,
        )
    audit_record(
        actor=actor,
        action="credit_note.create",
        obj=note,
        organization=invoice.organization,
        after={"number": note.number, "corrects": invoice.number, "amount": str(amount), "reason": reason},
    )
    _after_finalize([note.pk])
    if invoice.stripe_invoice_id:
        _after_commit_task("credit_note_push_to_stripe", note.pk)
    return note
