"""The rounding rule (core.money): exact per hour, rounded half-up to the cent once; that an invoice
line is rounded once, not hour by hour, is tested with invoicing (tests/billing/test_invoicing.py)."""

from decimal import Decimal

from core.money import amount_for, cents, gpu_hours


def test_half_a_cent_rounds_up_and_less_rounds_down() -> None:
    assert (cents(Decimal("0.005")), cents(Decimal("0.0049999")), cents(Decimal("1.235"))) == (
        Decimal("0.01"),
        Decimal("0.00"),
        Decimal("1.24"),
    )


def test_an_amount_is_exact_seconds_times_price_over_3600_rounded_once() -> None:
    # 9 seconds at 2.0000 is exactly 0.005: half a cent, rounded up.
    assert amount_for(Decimal(9) * Decimal("2.0000")) == Decimal("0.01")
    assert amount_for(Decimal(3599) * Decimal("2.4900")) == Decimal("2.49")  # 2.48930833…
    assert gpu_hours(3599) == Decimal("1.000") and gpu_hours(1) == Decimal("0.000")
