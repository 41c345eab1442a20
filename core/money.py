"""The one rounding rule of Voltpark billing.

Billing precision is the second: allocation periods, health events and "now" are truncated to
whole seconds before any overlap is measured. Prices are per GPU-hour with four decimals, so a
lease's cost over any time is exactly Σ(GPU-seconds × price) / 3600. An hour row keeps that value
to 12 decimal places for reading, but money is computed from the exact products: an invoice line
is Σ over its hour rows of GPU-seconds × price, divided by 3600 and rounded half-up to the cent
once. Credits are rounded the same way, per line. Nothing else rounds.
"""

from decimal import ROUND_HALF_UP, Context, Decimal

CENT = Decimal("0.01")


MILLI = Decimal("0.001")


SECONDS_PER_HOUR = 3600


# Wide enough that dividing any realistic product by 3600 is exact to far below a cent.
_EXACT = Context(prec=60)


def cents(value: Decimal) -> Decimal:
    """Round half-up to the cent: the only rounding of money."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def amount_for(gpu_seconds_times_price: Decimal) -> Decimal:
    """The billed amount of Σ(GPU-seconds × price per GPU-hour), rounded once to the cent."""
    return cents(_EXACT.divide(Decimal(gpu_seconds_times_price), Decimal(SECONDS_PER_HOUR)))


def gpu_hours(gpu_seconds: int) -> Decimal:
    """GPU-seconds shown as GPU-hours to three decimals (display only; money uses seconds)."""
    return _EXACT.divide(Decimal(gpu_seconds), Decimal(SECONDS_PER_HOUR)).quantize(MILLI, ROUND_HALF_UP)
