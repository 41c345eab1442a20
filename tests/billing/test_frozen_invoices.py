"""A finalized invoice and its lines never change: PostgreSQL refuses UPDATE and DELETE of them
(tested with raw SQL, as any code path would reach the database), while collection moves on."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from billing.choices import InvoiceStatus
from billing.models import Invoice, InvoiceLine
from billing.services.invoicing import invoice_mark_paid, invoice_void, month_close
from tests.billing.factories import make_lease

MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def refused(sql: str, params: list) -> str:
    """Run the statement and return PostgreSQL's refusal (the test's transaction stays usable)."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


@pytest.fixture
def open_invoice(acme, settings) -> Invoice:
    settings.STRIPE_ENABLED = False
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=10), gpus=8, price="1.9900")
    month_close(period_start=MARCH, now=datetime(2026, 4, 1, 1, tzinfo=UTC))
    invoice = Invoice.objects.get(organization=acme)
    if invoice.status != InvoiceStatus.OPEN:  # prepaid organizations' invoices are paid at once
        Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.OPEN, paid_at=None)
        invoice.refresh_from_db()
    return invoice


@pytest.mark.parametrize(
    ("change", "params"),
    [
        ("total = total + 1", []),
        ("number = 'INV-FAKE'", []),
        ("period_end = period_end + interval '1 day'", []),
        ("organization_id = %s", "globex"),
        ("status = 'draft'", []),
        ("due_at = now() + interval '90 days'", []),
    ],
)
def test_postgresql_refuses_to_change_a_finalized_invoice(open_invoice, globex, change, params) -> None:
    values = [globex.pk] if params == "globex" else []
    message = refused(f"UPDATE billing_invoice SET {change} WHERE id = %s", [*values, open_invoice.pk])
    assert f"invoice {open_invoice.number} is finalized" in message
    fresh = Invoice.objects.get(pk=open_invoice.pk)
    assert (fresh.total, fresh.number, fresh.status) == (open_invoice.total, open_invoice.number, "open")


def test_postgresql_refuses_to_delete_a_finalized_invoice(open_invoice) -> None:
    assert "cannot be deleted" in refused("DELETE FROM billing_invoice WHERE id = %s", [open_invoice.pk])
    assert Invoice.objects.filter(pk=open_invoice.pk).exists()


def test_postgresql_refuses_to_change_or_delete_a_finalized_invoices_lines(open_invoice) -> None:
    line = InvoiceLine.objects.filter(invoice=open_invoice).first()
    assert "lines cannot be changed" in refused(
        "UPDATE billing_invoiceline SET amount = 0 WHERE id = %s", [line.pk]
    )
    assert "lines cannot be deleted" in refused("DELETE FROM billing_invoiceline WHERE id = %s", [line.pk])
    assert InvoiceLine.objects.get(pk=line.pk).amount == line.amount


def test_postgresql_refuses_a_line_added_to_a_finalized_invoice(open_invoice) -> None:
    lines_before = InvoiceLine.objects.filter(invoice=open_invoice).count()
    message = refused(
        "INSERT INTO billing_invoiceline (invoice_id, position, kind, description, amount)"
        " VALUES (%s, 999, 'correction', 'added after the fact', 100)",
        [open_invoice.pk],
    )
    assert f"invoice {open_invoice.number} is finalized: its lines cannot be added to" in message
    assert InvoiceLine.objects.filter(invoice=open_invoice).count() == lines_before


def test_postgresql_refuses_a_draft_line_moved_onto_a_finalized_invoice(open_invoice, globex) -> None:
    draft = Invoice.objects.create(
        organization=globex, period_start=MARCH, period_end=datetime(2026, 4, 1, tzinfo=UTC)
    )
    line = InvoiceLine.objects.create(
        invoice=draft, position=1, kind="correction", description="moved", amount=50
    )
    message = refused(
        "UPDATE billing_invoiceline SET invoice_id = %s WHERE id = %s", [open_invoice.pk, line.pk]
    )
    assert "lines cannot be changed" in message
    assert InvoiceLine.objects.get(pk=line.pk).invoice_id == draft.pk


def test_collection_still_moves_on_paid_then_voided_and_stripe_ids_set(open_invoice, alice) -> None:
    Invoice.objects.filter(pk=open_invoice.pk).update(
        stripe_invoice_id="in_123", stripe_hosted_url="https://stripe.example/i/1"
    )
    paid = invoice_mark_paid(actor=None, invoice=open_invoice)
    assert Invoice.objects.get(pk=paid.pk).status == InvoiceStatus.PAID


def test_an_open_invoice_can_be_voided_with_its_note(open_invoice) -> None:
    voided = invoice_void(actor=None, invoice=open_invoice, reason="billed twice")
    fresh = Invoice.objects.get(pk=voided.pk)
    assert (fresh.status, fresh.note) == (InvoiceStatus.VOID, "billed twice")


def test_a_draft_and_its_lines_may_still_change_and_be_deleted(acme) -> None:
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=2), gpus=1)
    month_close(period_start=MARCH, now=datetime(2026, 4, 1, 1, tzinfo=UTC), finalize=False)
    draft = Invoice.objects.get(organization=acme)
    assert draft.status == InvoiceStatus.DRAFT
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoiceline SET description = 'x' WHERE invoice_id = %s", [draft.pk])
        cursor.execute("UPDATE billing_invoice SET note = 'redo' WHERE id = %s", [draft.pk])
        cursor.execute("DELETE FROM billing_invoiceline WHERE invoice_id = %s", [draft.pk])
        cursor.execute("DELETE FROM billing_invoice WHERE id = %s", [draft.pk])
    assert not Invoice.objects.filter(pk=draft.pk).exists()
