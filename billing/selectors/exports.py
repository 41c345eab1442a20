"""Rows of the finance exports (invoices, lines, FOCUS 1.2), read through server-side cursors."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import DateTimeField, Model, OuterRef, QuerySet, Subquery
from django.db.models.functions import TruncMonth

from billing.choices import InvoiceKind
from billing.models import Invoice, InvoiceLine, UsageHour
from billing.selectors.invoices import Scope, invoices_visible_to
from core.money import SECONDS_PER_HOUR
from core.periods import month_of, next_month


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


def usage_hours_visible_to(scope: Scope, wanted: ExportFilter) -> QuerySet[UsageHour]:
    """Usage rows in [from, to) by hour, in a region if asked."""
    rows = UsageHour.objects.all()
    if not scope.everyone:
        rows = rows.filter(organization=scope.organization)
    if wanted.period_from:
        rows = rows.filter(hour__gte=wanted.period_from)
    if wanted.period_to:
        rows = rows.filter(hour__lt=wanted.period_to)
    if wanted.region:
        rows = rows.filter(region__code=wanted.region)
    return rows.order_by("hour", "lease_id")


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


# FOCUS 1.2 columns written for every row: the mandatory ones and those that apply to GPU rental.
FOCUS_COLUMNS = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
]


def iso(value: datetime | None) -> str:
    """An instant as ISO 8601 UTC with a Z, or empty."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def invoice_rows(invoices: QuerySet[Invoice]) -> Iterator[list[Any]]:
    return _rows(invoices, INVOICE_FIELDS)


def line_rows(lines: QuerySet[InvoiceLine]) -> Iterator[list[Any]]:
    return _rows(lines, LINE_FIELDS)


def _rows(queryset: QuerySet[Any], fields: list[tuple[str, str]]) -> Iterator[list[Any]]:
    """The fields' values in column order, instants (empty ones too) as ISO 8601 UTC text."""
    names = [field for _, field in fields]
    instants = [_is_instant(queryset.model, field) for field in names]
    for row in queryset.values_list(*names).iterator(chunk_size=CHUNK):
        yield [iso(value) if instant else value for value, instant in zip(row, instants, strict=True)]


def _is_instant(model: type[Model], path: str) -> bool:
    *relations, name = path.split("__")
    for relation in relations:
        model = model._meta.get_field(relation).related_model  # type: ignore[assignment]
    return isinstance(model._meta.get_field(name), DateTimeField)


def focus_rows(usage: QuerySet[UsageHour]) -> Iterator[list[Any]]:
    """One FOCUS row per lease and hour; cost is the hour's exact amount to the cent's fraction."""
    invoice = Invoice.objects.filter(
        organization=OuterRef("organization"),
        kind=InvoiceKind.INVOICE,
        period_start=OuterRef("month"),
    )
    months = usage.annotate(month=TruncMonth("hour"))
    rows = months.annotate(invoice_number=Subquery(invoice.values("number")[:1])).values_list(
        "hour",
        "gpu_seconds",
        "price_per_gpu_hour",
        "organization__public_id",
        "organization__name",
        "region__code",
        "region__name",
        "lease__public_id",
        "lease__kind",
        "lease__gpus",
        "invoice_number",
    )
    for row in rows.iterator(chunk_size=CHUNK):
        yield _focus_row(*row)


def _focus_row(
    hour: datetime,
    seconds: int,
    price: Decimal,
    org_id: Any,
    org_name: str,
    region: str,
    region_name: str,
    lease_id: Any,
    kind: str,
    gpus: int,
    invoice_number: str | None,
) -> list[Any]:
    quantity = (Decimal(seconds) / SECONDS_PER_HOUR).quantize(Decimal("0.000001"))
    cost = (Decimal(seconds) * price / SECONDS_PER_HOUR).quantize(Decimal("0.0000000001"))
    period = month_of(hour)
    values = {
        "BilledCost": cost,
        "BillingAccountId": org_id,
        "BillingAccountName": org_name,
        "BillingAccountType": "Organization",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": iso(next_month(period)),
        "BillingPeriodStart": iso(period),
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "ChargeFrequency": "Usage-Based",
        "ChargeDescription": f"{gpus}x NVIDIA H100 {kind.replace('_', '-')} GPU-hours in {region}",
        "ChargePeriodEnd": iso(hour + HOUR),
        "ChargePeriodStart": iso(hour),
        "ConsumedQuantity": quantity,
        "ConsumedUnit": "GPU-Hours",
        "ContractedCost": cost,
        "ContractedUnitPrice": price,
        "EffectiveCost": cost,
        "InvoiceId": invoice_number or "",
        "InvoiceIssuerName": "Voltpark",
        "ListCost": cost,
        "ListUnitPrice": price,
        "PricingCategory": "Standard",
        "PricingQuantity": quantity,
        "PricingUnit": "GPU-Hours",
        "ProviderName": "Voltpark",
        "PublisherName": "Voltpark",
        "RegionId": region,
        "RegionName": region_name,
        "ResourceId": lease_id,
        "ResourceName": f"lease {lease_id}",
        "ResourceType": "GPU Lease",
        "ServiceCategory": "Compute",
        "ServiceName": "Voltpark GPU Cloud",
        "ServiceSubcategory": "Other (Compute)",
        "SkuId": f"h100-{kind}",
        "SkuPriceId": f"h100-{kind}-{price}",
        "SubAccountId": org_id,
        "SubAccountName": org_name,
        "SubAccountType": "Organization",
        "Tags": json.dumps({"lease_kind": kind, "gpus": gpus}),
    }
    return [values[column] for column in FOCUS_COLUMNS]
