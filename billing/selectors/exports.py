"""Rows of the finance exports (invoices, lines, FOCUS 1.2), read through server-side cursors."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import DateTimeField, Model, QuerySet

from billing.models import Invoice, InvoiceLine
from billing.selectors.invoices import Scope, invoices_visible_to


@dataclass(frozen=True)
class ExportFilter:
    """The filters every export and listing shares: a period range, statuses, a region."""

    period_from: datetime | None = None
    period_to: datetime | None = None
    statuses: tuple[str, ...] = ()
    region: str | None = None


def filtered_invoices(scope: Scope, wanted: ExportFilter) -> QuerySet[Invoice]:
    """Invoices whose period starts in [from, to), with a status and a line in a region if asked."""
    invoices = invoices_visible_to(scope)
    if wanted.period_from:
        invoices = invoices.filter(period_start__gte=wanted.period_from)
    if wanted.period_to:
        invoices = invoices.filter(period_start__lt=wanted.period_to)
    if wanted.statuses:
        invoices = invoices.filter(status__in=wanted.statuses)
    if wanted.region:
        invoices = invoices.filter(lines__region__code=wanted.region).distinct()
    return invoices


def filtered_invoice_lines(scope: Scope, wanted: ExportFilter) -> QuerySet[InvoiceLine]:
    """Lines of the filtered invoices (only the region's lines when a region is asked)."""
    lines = InvoiceLine.objects.filter(
        invoice__in=filtered_invoices(
            scope,
            ExportFilter(
                period_from=wanted.period_from,
                period_to=wanted.period_to,
                statuses=wanted.statuses,
            ),
        )
    )
    if wanted.region:
        lines = lines.filter(region__code=wanted.region)
    return lines.order_by("invoice__period_start", "invoice_id", "position")


CHUNK = 2000


HOUR = timedelta(hours=1)


# (column, field) pairs: the column names are the export's contract, the fields where each is read.
INVOICE_FIELDS = [
    ("number", "number"),
    ("kind", "kind"),
    ("status", "status"),
    ("organization", "organization__name"),
    ("organization_id", "organization__public_id"),
    ("period_start", "period_start"),
    ("period_end", "period_end"),
    ("currency", "currency"),
    ("subtotal", "subtotal"),
    ("credits", "credits"),
    ("total", "total"),
    ("issued_at", "issued_at"),
    ("paid_at", "paid_at"),
    ("voided_at", "voided_at"),
    ("invoice_id", "public_id"),
]


LINE_FIELDS = [
    ("invoice_number", "invoice__number"),
    ("invoice_status", "invoice__status"),
    ("organization", "invoice__organization__name"),
    ("period_start", "invoice__period_start"),
    ("position", "position"),
    ("kind", "kind"),
    ("description", "description"),
    ("region", "region__code"),
    ("gpus", "gpus"),
    ("gpu_hours", "gpu_hours"),
    ("price_per_gpu_hour", "price_per_gpu_hour"),
    ("amount", "amount"),
    ("currency", "invoice__currency"),
    ("lease_id", "lease__public_id"),
]


INVOICE_COLUMNS = [column for column, _ in INVOICE_FIELDS]


LINE_COLUMNS = [column for column, _ in LINE_FIELDS]


def iso(value: datetime | None) -> str:
    """An instant as ISO 8601 UTC with a Z, or empty."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def invoice_rows(invoices: QuerySet[Invoice], *, excel: bool = False) -> Iterator[list[Any]]:
    return _rows(invoices, INVOICE_FIELDS, excel)


def line_rows(lines: QuerySet[InvoiceLine], *, excel: bool = False) -> Iterator[list[Any]]:
    return _rows(lines, LINE_FIELDS, excel)


def _rows(queryset: QuerySet[Any], fields: list[tuple[str, str]], excel: bool) -> Iterator[list[Any]]:
    """The fields' values in column order. Instants are ISO 8601 UTC text for CSV; for a spreadsheet
    they stay dates (naive, in UTC: Excel has no time zones) and amounts stay numbers."""
    names = [field for _, field in fields]
    instants = [_is_instant(queryset.model, field) for field in names]
    for row in queryset.values_list(*names).iterator(chunk_size=CHUNK):
        yield [
            _excel(value) if excel else (iso(value) if instant else value)
            for value, instant in zip(row, instants, strict=True)
        ]


def _excel(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, Decimal | int | float | str) or value is None:
        return value
    return str(value)


def _is_instant(model: type[Model], path: str) -> bool:
    *relations, name = path.split("__")
    for relation in relations:
        model = model._meta.get_field(relation).related_model  # type: ignore[assignment]
    return isinstance(model._meta.get_field(name), DateTimeField)
