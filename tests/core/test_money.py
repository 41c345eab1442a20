"""The rounding rule: exact per hour, rounded half-up to the cent once per line."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.models import Invoice
from billing.services.invoicing import month_close
from core.money import amount_for, cents, gpu_hours
from tests.billing.factories import make_lease


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


def test_a_line_is_rounded_once_not_hour_by_hour(acme) -> None:  # type: ignore[no-untyped-def]
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
