"""Gapless invoice numbers per series and year, such as VP-2026-000001."""

from django.db import transaction

from billing.models import InvoiceNumberCounter


def reserve_numbers(*, series: str, year: int, count: int) -> list[str]:
    """The next `count` numbers of the series; call inside the transaction that uses them.

    The counter row is locked FOR UPDATE until that transaction ends, so concurrent finalizations
    queue on it, and a rolled-back finalization gives its number back: no gaps, no duplicates.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Invoice numbers must be reserved inside the finalizing transaction.")
    InvoiceNumberCounter.objects.bulk_create(
        [InvoiceNumberCounter(series=series, year=year)], ignore_conflicts=True
    )
    counter = InvoiceNumberCounter.objects.select_for_update().get(series=series, year=year)
    first = counter.last_number + 1
    counter.last_number += count
    counter.save(update_fields=["last_number"])
    return [f"{series}-{year}-{n:06d}" for n in range(first, first + count)]
