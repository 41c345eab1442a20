"""Credit grants are spent oldest-first against invoices, never below zero, and expire."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.choices import InvoiceStatus, LineKind
from billing.models import CreditGrant, Invoice
from billing.services.credits import credit_grant_create
from billing.services.invoicing import invoice_void, month_close
from tests.billing.factories import make_lease

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
NOW = datetime(2026, 5, 1, 1, tzinfo=UTC)


def grant(org, amount: str, granted: datetime, expires: datetime) -> CreditGrant:
    return credit_grant_create(
        actor=None, organization=org, amount=Decimal(amount), granted_at=granted, expires_at=expires
    )


def bill(org, hours: int, month: datetime = MARCH) -> Invoice:
    """An invoice of `hours` GPU-hours at 10.00: 10 × hours USD."""
    make_lease(organization=org, start=month, end=month + timedelta(hours=hours), price="10.0000")
    month_close(period_start=month, now=NOW)
    return Invoice.objects.get(organization=org, period_start=month)


def test_grants_are_spent_oldest_first(acme) -> None:
    newer = grant(acme, "50.00", MARCH + timedelta(days=2), NOW + timedelta(days=90))
    older = grant(acme, "30.00", MARCH - timedelta(days=10), NOW + timedelta(days=90))
    invoice = bill(acme, 4)  # 40.00
    lines = list(invoice.lines.filter(kind=LineKind.PROGRAM_CREDIT).order_by("position"))
    assert [(line.credit_grant_id, line.amount) for line in lines] == [
        (older.pk, Decimal("-30.00")),
        (newer.pk, Decimal("-10.00")),
    ]
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.remaining, newer.remaining) == (Decimal("0.00"), Decimal("40.00"))
    assert (invoice.credits, invoice.total, invoice.status) == (
        Decimal("40.00"),
        Decimal("0.00"),
        InvoiceStatus.PAID,
    )


def test_credits_never_take_an_invoice_below_zero(acme) -> None:
    big = grant(acme, "1000.00", MARCH, NOW + timedelta(days=90))
    invoice = bill(acme, 2)
    assert (invoice.subtotal, invoice.credits, invoice.total) == (
        Decimal("20.00"),
        Decimal("20.00"),
        Decimal("0.00"),
    )
    big.refresh_from_db()
    assert big.remaining == Decimal("980.00")


def test_what_is_left_of_a_grant_pays_the_next_month(acme) -> None:
    g = grant(acme, "25.00", MARCH, NOW + timedelta(days=90))
    bill(acme, 2)
    april = bill(acme, 3, month=APRIL)
    assert (april.credits, april.total) == (Decimal("5.00"), Decimal("25.00"))
    g.refresh_from_db()
    assert g.remaining == Decimal("0.00")


def test_an_expired_grant_pays_nothing(acme) -> None:
    expired = grant(acme, "100.00", MARCH - timedelta(days=60), MARCH - timedelta(days=1))
    invoice = bill(acme, 2)
    assert (invoice.credits, invoice.total) == (Decimal("0.00"), Decimal("20.00"))
    expired.refresh_from_db()
    assert expired.remaining == Decimal("100.00")


def test_a_grant_given_after_the_month_does_not_pay_for_it(acme) -> None:
    grant(acme, "100.00", APRIL + timedelta(days=1), NOW + timedelta(days=90))
    assert bill(acme, 2).total == Decimal("20.00")


def test_voiding_gives_the_credits_back(acme, frank) -> None:
    g = grant(acme, "15.00", MARCH, NOW + timedelta(days=90))
    invoice = bill(acme, 2)
    g.refresh_from_db()
    assert (invoice.credits, invoice.total, g.remaining) == (
        Decimal("15.00"),
        Decimal("5.00"),
        Decimal("0.00"),
    )
    invoice_void(actor=frank, invoice=invoice, reason="Wrong rate")
    g.refresh_from_db()
    assert g.remaining == Decimal("15.00")
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.VOID


def test_a_grant_must_be_positive_and_expire_after_it_is_given(acme) -> None:
    with pytest.raises(ValidationError):
        grant(acme, "0.00", MARCH, APRIL)
    with pytest.raises(ValidationError):
        grant(acme, "10.00", APRIL, MARCH)
    assert not CreditGrant.objects.exists()
