"""Month close, invoice states and their refusals, SLA credits, credit notes."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditEntry
from billing.choices import InvoiceKind, InvoiceStatus, LineKind
from billing.models import Invoice, InvoiceLine, MonthClose
from billing.services.invoicing import (
    credit_note_create,
    invoice_finalize,
    invoice_mark_paid,
    invoice_void,
    month_close,
)
from billing.services.refusals import CreditNoteTooLarge, InvoiceStateError, MonthNotOver
from tests.billing.factories import make_lease, unhealthy

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 1, 0, 30, tzinfo=UTC)


def usage_lines(invoice: Invoice) -> list[InvoiceLine]:
    return list(invoice.lines.filter(kind=LineKind.USAGE).order_by("position"))


def test_closing_a_month_gives_each_organization_with_usage_one_invoice(acme, globex) -> None:
    first = make_lease(
        organization=acme,
        start=MARCH + timedelta(days=1),
        end=MARCH + timedelta(days=1, hours=10),
        gpus=8,
        price="1.9900",
    )
    make_lease(
        organization=acme, start=MARCH + timedelta(days=3), end=MARCH + timedelta(days=3, minutes=20), gpus=2
    )
    make_lease(organization=globex, start=MARCH - timedelta(days=1), end=MARCH + timedelta(hours=1), gpus=1)
    result = month_close(period_start=MARCH, now=NOW)
    assert (result.invoices_created, result.finalized) == (2, 2)
    invoice = Invoice.objects.get(organization=acme)
    lines = usage_lines(invoice)
    assert [(line.lease_id, line.gpus, line.gpu_hours, line.amount) for line in lines] == [
        (first.pk, 8, Decimal("80.000"), Decimal("159.20")),
        (lines[1].lease_id, 2, Decimal("0.667"), Decimal("1.33")),
    ]
    assert (invoice.subtotal, invoice.credits, invoice.total, invoice.currency) == (
        Decimal("160.53"),
        Decimal("0.00"),
        Decimal("160.53"),
        "USD",
    )
    assert invoice.status == InvoiceStatus.OPEN and invoice.number.startswith("VP-2026-")
    # Globex's lease began in February: only its March hour is billed.
    assert Invoice.objects.get(organization=globex).lines.get().gpu_hours == Decimal("1.000")


def test_an_organization_without_usage_gets_no_invoice(acme, globex) -> None:
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=1))
    month_close(period_start=MARCH, now=NOW)
    assert not Invoice.objects.filter(organization=globex).exists()


def test_closing_the_same_month_twice_changes_nothing(acme) -> None:
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=3), gpus=4)
    month_close(period_start=MARCH, now=NOW)
    snapshot = list(Invoice.objects.values_list("number", "status", "total", "issued_at"))
    lines = list(InvoiceLine.objects.values_list("invoice", "position", "amount"))
    again = month_close(period_start=MARCH, now=NOW + timedelta(days=2))
    assert (again.invoices_created, again.invoices_existing) == (0, 1)
    assert list(Invoice.objects.values_list("number", "status", "total", "issued_at")) == snapshot
    assert list(InvoiceLine.objects.values_list("invoice", "position", "amount")) == lines
    assert MonthClose.objects.get().invoices_created == 1


def test_a_month_not_yet_over_is_refused(acme) -> None:
    with pytest.raises(MonthNotOver, match="not over yet"):
        month_close(period_start=APRIL, now=NOW)
    assert not MonthClose.objects.exists()


def test_the_command_closes_a_month_and_refuses_one_not_over(acme, capsys) -> None:
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=1))
    call_command("close_month", "2026-03")
    assert "1 invoices created (1 finalized)" in capsys.readouterr().out
    with pytest.raises(CommandError, match="is not over yet"):
        call_command("close_month", "2999-01")
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("close_month", "March")
    assert Invoice.objects.count() == 1


def test_time_a_node_was_unhealthy_is_credited_with_a_line_naming_the_event(acme) -> None:
    lease = make_lease(
        organization=acme, start=MARCH, end=MARCH + timedelta(hours=10), gpus=4, price="3.0000"
    )
    node = lease.allocations.first().node
    event = unhealthy(node, MARCH + timedelta(hours=2), MARCH + timedelta(hours=3, minutes=30))
    month_close(period_start=MARCH, now=NOW)
    invoice = Invoice.objects.get()
    credit = invoice.lines.get(kind=LineKind.SLA_CREDIT)
    assert (credit.health_event_id, credit.lease_id, credit.gpu_hours) == (
        event.pk,
        lease.pk,
        Decimal("6.000"),
    )
    assert credit.amount == Decimal("-18.00")
    assert (invoice.subtotal, invoice.credits, invoice.total) == (
        Decimal("120.00"),
        Decimal("18.00"),
        Decimal("102.00"),
    )


def test_overlapping_health_events_are_not_credited_twice(acme) -> None:
    lease = make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=4), gpus=1, price="1.0000")
    node = lease.allocations.get().node
    unhealthy(node, MARCH + timedelta(hours=1), MARCH + timedelta(hours=3))
    unhealthy(node, MARCH + timedelta(hours=2), None, kind="ecc")  # still open: clipped at the lease's end
    month_close(period_start=MARCH, now=NOW)
    credits = Invoice.objects.get().lines.filter(kind=LineKind.SLA_CREDIT).order_by("position")
    assert [line.amount for line in credits] == [Decimal("-2.00"), Decimal("-1.00")]


def test_an_event_on_another_node_is_not_credited(acme) -> None:
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=4))
    other = make_lease(
        organization=acme, start=MARCH + timedelta(days=5), end=MARCH + timedelta(days=5, hours=1)
    )
    unhealthy(other.allocations.get().node, MARCH, MARCH + timedelta(hours=4))
    month_close(period_start=MARCH, now=NOW)
    assert not InvoiceLine.objects.filter(kind=LineKind.SLA_CREDIT).exists()


@pytest.fixture
def draft(acme) -> Invoice:
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=5), gpus=2, price="2.5000")
    month_close(period_start=MARCH, now=NOW, finalize=False)
    return Invoice.objects.get()


def test_a_draft_has_no_number_and_finalizing_numbers_it_and_audits(draft, frank) -> None:
    assert draft.status == InvoiceStatus.DRAFT and draft.number is None
    invoice_finalize(actor=frank, invoice=draft)
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.OPEN and draft.number == f"VP-{draft.issued_at.year}-000001"
    entry = AuditEntry.objects.get(action="invoice.finalize")
    assert (entry.actor, entry.object_id, entry.after["number"]) == (
        frank,
        str(draft.public_id),
        draft.number,
    )


def test_finalizing_twice_is_refused(draft, frank) -> None:
    invoice_finalize(actor=frank, invoice=draft)
    with pytest.raises(InvoiceStateError, match="Only a draft"):
        invoice_finalize(actor=frank, invoice=draft)
    assert AuditEntry.objects.filter(action="invoice.finalize").count() == 1


def test_an_open_invoice_can_be_paid_once_and_not_voided_after(draft, frank) -> None:
    with pytest.raises(InvoiceStateError):
        invoice_mark_paid(actor=frank, invoice=draft)
    invoice_finalize(actor=frank, invoice=draft)
    invoice_mark_paid(actor=frank, invoice=draft)
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.PAID and draft.paid_at is not None
    with pytest.raises(InvoiceStateError):
        invoice_mark_paid(actor=frank, invoice=draft)
    with pytest.raises(InvoiceStateError, match="Only an open invoice can be voided"):
        invoice_void(actor=frank, invoice=draft, reason="oops")
    assert Invoice.objects.get().status == InvoiceStatus.PAID


def test_a_voided_invoice_keeps_its_number_and_cannot_be_paid(draft, frank) -> None:
    invoice_finalize(actor=frank, invoice=draft)
    number = Invoice.objects.get().number
    invoice_void(actor=frank, invoice=draft, reason="Billed to the wrong organization")
    draft.refresh_from_db()
    assert (draft.status, draft.number, draft.note) == (
        InvoiceStatus.VOID,
        number,
        "Billed to the wrong organization",
    )
    with pytest.raises(InvoiceStateError):
        invoice_mark_paid(actor=frank, invoice=draft)
    with pytest.raises(InvoiceStateError):
        invoice_void(actor=frank, invoice=draft, reason="again")
    assert AuditEntry.objects.filter(action="invoice.void", object_id=str(draft.public_id)).count() == 1


def test_a_draft_cannot_be_voided(draft, frank) -> None:
    with pytest.raises(InvoiceStateError):
        invoice_void(actor=frank, invoice=draft, reason="no")
    assert Invoice.objects.get().status == InvoiceStatus.DRAFT


def test_a_correction_is_a_new_numbered_credit_note_and_the_invoice_is_unchanged(draft, frank) -> None:
    invoice_finalize(actor=frank, invoice=draft)
    draft.refresh_from_db()
    before = (draft.total, draft.status, list(draft.lines.values_list("amount", flat=True)))
    note = credit_note_create(actor=frank, invoice=draft, amount=Decimal("5.00"), reason="Goodwill")
    assert note.kind == InvoiceKind.CREDIT_NOTE and note.number.startswith("VPCN-")
    assert (note.corrects_id, note.total, note.lines.get().amount) == (
        draft.pk,
        Decimal("5.00"),
        Decimal("5.00"),
    )
    draft.refresh_from_db()
    assert (draft.total, draft.status, list(draft.lines.values_list("amount", flat=True))) == before


def test_credit_notes_may_not_exceed_what_is_left_of_the_invoice(draft, frank) -> None:
    invoice_finalize(actor=frank, invoice=draft)
    draft.refresh_from_db()  # total 25.00
    credit_note_create(actor=frank, invoice=draft, amount=Decimal("20.00"), reason="part")
    with pytest.raises(CreditNoteTooLarge):
        credit_note_create(actor=frank, invoice=draft, amount=Decimal("5.01"), reason="too much")
    assert Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).count() == 1


def test_a_draft_cannot_get_a_credit_note(draft, frank) -> None:
    with pytest.raises(InvoiceStateError):
        credit_note_create(actor=frank, invoice=draft, amount=Decimal("1.00"), reason="x")
    assert not Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).exists()


def test_a_line_is_rounded_once_not_hour_by_hour(acme) -> None:
    # 10 GPU-seconds in one hour and 8 in the next at 1.00: 0.00278 + 0.00222 = 0.005 → 0.01, where
    # rounding each hour first would give 0.00 + 0.00.
    march = datetime(2026, 3, 1, tzinfo=UTC)
    make_lease(
        organization=acme,
        start=march + timedelta(minutes=59, seconds=55),
        end=march + timedelta(hours=1, seconds=4),
        price="1.0000",
        gpus=2,
    )
    month_close(period_start=march, now=datetime(2026, 4, 2, tzinfo=UTC))
    line = Invoice.objects.get().lines.get()
    assert line.gpu_hours == Decimal("0.005") and line.amount == Decimal("0.01")
