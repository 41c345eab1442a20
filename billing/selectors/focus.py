"""The FOCUS 1.2 cost and usage export: usage by lease and hour, reserved commitments and their
unused time, credits and credit notes, adding up to the invoices.

Rows, streamed through server-side cursors:

- **Usage** of on-demand leases, one per lease and hour. `BilledCost` is the hour's share of the
  invoice line: the line's running total rounded to the cent after this hour minus the same
  before it (core/money.py's rule, applied to the running sum), so a lease's rows add up to its
  invoice line exactly; `ListCost`/`ContractedCost` are the exact price × quantity.
- **Reserved leases are capacity reservations**: the commitment is a `Purchase` row billed when
  booked (`CapacityReservationId` = the lease); its hours are `Usage` rows with
  `CapacityReservationStatus` "Used", billed 0 and an `EffectiveCost` of their share of the
  commitment; time of the window that has passed unused (released early) is one "Unused" row per
  lease and month. A refund of a commitment cancelled in time is a `Credit`.
- **Credits** (SLA, program) are `Credit` rows of their invoice; credit notes are `Credit` rows with
  `ChargeClass` "Correction" in the billing period of the invoice they correct.

For a closed month, Σ BilledCost = Σ the month's invoice totals − Σ their credit notes, to the cent.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from billing.choices import InvoiceKind, InvoiceStatus, LedgerKind, LineKind
from billing.models import Invoice, InvoiceLine, LedgerEntry, UsageHour
from billing.selectors.exports import ExportFilter
from billing.selectors.invoices import Scope
from clusters.choices import LeaseKind
from clusters.models import Lease
from core.money import SECONDS_PER_HOUR, cents
from core.periods import month_of, next_month

FOCUS_COLUMNS = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "CapacityReservationId",
    "CapacityReservationStatus",
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
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
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
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
]

CHUNK = 2000
HOUR = timedelta(hours=1)
PLACES = Decimal("0.0000000001")
QUANTITY = Decimal("0.000001")
PROVIDER = "Voltpark"
UNIT = "GPU-Hours"


def iso(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def _reservation(lease_id: Any) -> str:
    return f"voltpark:lease/{lease_id}"


def _sku(kind: str) -> str:
    return f"nvidia-h100-{kind.replace('_', '-')}"


def _base(org_id: Any, org_name: str, period: datetime) -> dict[str, Any]:
    """What every row of an organization's billing period says."""
    return {
        "BillingAccountId": org_id,
        "BillingAccountName": org_name,
        "BillingAccountType": "Organization",
        "BillingCurrency": "USD",
        "BillingPeriodStart": iso(period),
        "BillingPeriodEnd": iso(next_month(period)),
        "InvoiceIssuerName": PROVIDER,
        "ProviderName": PROVIDER,
        "PublisherName": PROVIDER,
        "ServiceCategory": "Compute",
        "ServiceName": "Voltpark GPU Cloud",
        "ServiceSubcategory": "Other (Compute)",
        "SubAccountId": org_id,
        "SubAccountName": org_name,
        "SubAccountType": "Organization",
        "CapacityReservationId": None,
        "CapacityReservationStatus": None,
        "ChargeClass": None,
        "ConsumedQuantity": None,
        "ConsumedUnit": None,
        "ContractedUnitPrice": None,
        "ListUnitPrice": None,
        "PricingCategory": None,
        "PricingQuantity": None,
        "PricingUnit": None,
        "RegionId": None,
        "RegionName": None,
        "ResourceId": None,
        "ResourceName": None,
        "ResourceType": None,
        "SkuId": None,
        "SkuMeter": None,
        "SkuPriceDetails": None,
        "SkuPriceId": None,
        "Tags": None,
        "InvoiceId": None,
    }


def _lease_fields(lease_id: Any, kind: str, gpus: int, region: str, region_name: str, price: Decimal) -> dict:
    return {
        "RegionId": region,
        "RegionName": region_name,
        "ResourceId": _reservation(lease_id),
        "ResourceName": f"lease {lease_id}",
        "ResourceType": "GPU Lease",
        "SkuId": _sku(kind),
        "SkuMeter": "GPU Hours",
        "SkuPriceId": f"{_sku(kind)}-{region}-{price}",
        "SkuPriceDetails": json.dumps(
            {"GpuModel": "NVIDIA H100 80GB", "LeaseKind": kind, "RegionId": region}
        ),
        "Tags": json.dumps({"voltpark/lease-kind": kind, "voltpark/gpus": str(gpus)}),
        "ListUnitPrice": price,
        "ContractedUnitPrice": price,
        "PricingCategory": "Standard" if kind == LeaseKind.ON_DEMAND else "Committed",
        "PricingUnit": UNIT,
    }


def _row(values: dict[str, Any]) -> list[Any]:
    # Prices are set and billed in one currency, so the pricing-currency columns repeat the USD ones.
    values["PricingCurrency"] = "USD"
    values["PricingCurrencyContractedUnitPrice"] = values["ContractedUnitPrice"]
    values["PricingCurrencyListUnitPrice"] = values["ListUnitPrice"]
    values["PricingCurrencyEffectiveCost"] = values["EffectiveCost"]
    values["ChargeDescription"] = _ascii(values["ChargeDescription"])
    return ["" if values[column] is None else values[column] for column in FOCUS_COLUMNS]


def _ascii(text: str) -> str:
    """FOCUS wants ASCII descriptions: our × and – spelled x and -, anything else dropped."""
    return text.replace("×", "x").replace("–", "-").encode("ascii", "ignore").decode()


def focus_rows(scope: Scope, wanted: ExportFilter, now: datetime | None = None) -> Iterator[list[Any]]:
    """Every FOCUS row of the scope and filter: usage, reservations, credits, credit notes."""
    now = now or timezone.now()
    yield from _usage_rows(scope, wanted)
    yield from _unused_rows(scope, wanted, now)
    yield from _commitment_rows(scope, wanted)
    yield from _credit_rows(scope, wanted)


def _usage(scope: Scope, wanted: ExportFilter) -> QuerySet[UsageHour]:
    rows = UsageHour.objects.all()
    if not scope.everyone:
        # Through its leases: the (lease, hour) key is the usage rows' index for one organization.
        rows = rows.filter(lease__in=Lease.objects.filter(organization=scope.organization).values("pk"))
    if wanted.period_from:
        rows = rows.filter(hour__gte=wanted.period_from)
    if wanted.period_to:
        rows = rows.filter(hour__lt=wanted.period_to)
    if wanted.region:
        rows = rows.filter(region__code=wanted.region)
    return rows


def _invoice_numbers(scope: Scope) -> dict[tuple[int, datetime], str]:
    invoices = Invoice.objects.filter(kind=InvoiceKind.INVOICE).exclude(status=InvoiceStatus.VOID)
    if not scope.everyone:
        invoices = invoices.filter(organization=scope.organization)
    return {
        (org, period): number
        for org, period, number in invoices.values_list("organization_id", "period_start", "number")
        if number
    }


def _usage_rows(scope: Scope, wanted: ExportFilter) -> Iterator[list[Any]]:
    numbers = _invoice_numbers(scope)
    rows = (
        _usage(scope, wanted)
        .order_by("organization_id", "lease_id", "hour")
        .values_list(
            "hour",
            "gpu_seconds",
            "price_per_gpu_hour",
            "organization_id",
            "organization__public_id",
            "organization__name",
            "region__code",
            "region__name",
            "lease__public_id",
            "lease__kind",
            "lease__gpus",
        )
    )
    running_key: tuple[Any, datetime] | None = None
    running = Decimal(0)
    for hour, secs, price, org, org_id, org_name, region, region_name, lease_id, kind, gpus in rows.iterator(
        chunk_size=CHUNK
    ):
        period = month_of(hour)
        exact = Decimal(secs) * price / SECONDS_PER_HOUR
        if (lease_id, period) != running_key:
            running_key, running = (lease_id, period), Decimal(0)
        before, running = running, running + exact
        quantity = (Decimal(secs) / SECONDS_PER_HOUR).quantize(QUANTITY)
        values = _base(org_id, org_name, period)
        values.update(_lease_fields(lease_id, kind, gpus, region, region_name, price))
        reserved = kind == LeaseKind.RESERVED
        billed = Decimal("0.00") if reserved else cents(running) - cents(before)
        values.update(
            {
                "ChargeCategory": "Usage",
                "ChargeFrequency": "Usage-Based",
                "ChargeDescription": f"{gpus}x NVIDIA H100 {kind.replace('_', '-')} GPU-hours in {region}",
                "ChargePeriodStart": iso(hour),
                "ChargePeriodEnd": iso(hour + HOUR),
                "ConsumedQuantity": quantity,
                "ConsumedUnit": UNIT,
                "PricingQuantity": quantity,
                "BilledCost": billed,
                "EffectiveCost": exact.quantize(PLACES) if reserved else billed,
                "ListCost": exact.quantize(PLACES),
                "ContractedCost": exact.quantize(PLACES),
                "InvoiceId": numbers.get((org, period), ""),
            }
        )
        if reserved:
            values["CapacityReservationId"] = _reservation(lease_id)
            values["CapacityReservationStatus"] = "Used"
        yield _row(values)


# Per reserved lease and month: the GPU-seconds of its window that have passed, and those used.
UNUSED_SQL = """
WITH committed AS (
    SELECT lease_id, max(covers_until) AS until FROM billing_ledgerentry
    WHERE kind = 'commitment' AND lease_id IS NOT NULL GROUP BY lease_id
),
months AS (
    SELECT l.id, l.public_id, l.organization_id, l.gpus, l.price_per_gpu_hour AS price, l.kind,
           r.code, r.name AS region_name, o.public_id AS org_public_id, o.name AS org_name,
           m AS month,
           greatest(l.start, m) AS lo,
           least(c.until, m + interval '1 month', %(now)s) AS hi
    FROM clusters_lease l
    JOIN committed c ON c.lease_id = l.id
    JOIN clusters_region r ON r.id = l.region_id
    JOIN accounts_organization o ON o.id = l.organization_id
    CROSS JOIN LATERAL generate_series(
        date_trunc('month', l.start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
        c.until - interval '1 microsecond', interval '1 month'
    ) AS m
    WHERE l.kind = 'reserved' AND l.state IN ('scheduled', 'active', 'ended')
      {where}
)
SELECT months.*, coalesce((
    SELECT sum(u.gpu_seconds) FROM billing_usagehour u
    WHERE u.lease_id = months.id AND u.hour >= months.month AND u.hour < months.month + interval '1 month'
), 0) AS used
FROM months WHERE hi > lo
ORDER BY organization_id, month, id
"""


def _unused_rows(scope: Scope, wanted: ExportFilter, now: datetime) -> Iterator[list[Any]]:
    where, params = "", cast(dict[str, Any], {"now": now})
    if not scope.everyone:
        where += " AND l.organization_id = %(org)s"
        params["org"] = scope.organization.pk if scope.organization else None
    if wanted.region:
        where += " AND r.code = %(region)s"
        params["region"] = wanted.region
    with connection.cursor() as cursor:
        cursor.execute(UNUSED_SQL.format(where=where), params)
        names = [column.name for column in cursor.description]
        found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    numbers = _invoice_numbers(scope)
    for row in found:
        if not _in_period(row["month"], wanted):
            continue
        window = int((row["hi"] - row["lo"]).total_seconds()) * row["gpus"]
        unused = window - int(row["used"])
        if unused <= 0:
            continue
        values = _unused_values(row, unused)
        values["InvoiceId"] = numbers.get((row["organization_id"], row["month"]), "")
        yield _row(values)


def _in_period(period: datetime, wanted: ExportFilter) -> bool:
    return not (
        (wanted.period_from and period < wanted.period_from)
        or (wanted.period_to and period >= wanted.period_to)
    )


def _unused_values(row: dict[str, Any], unused_seconds: int) -> dict[str, Any]:
    values = _base(row["org_public_id"], row["org_name"], row["month"])
    values.update(
        _lease_fields(
            row["public_id"], row["kind"], row["gpus"], row["code"], row["region_name"], row["price"]
        )
    )
    exact = Decimal(unused_seconds) * row["price"] / SECONDS_PER_HOUR
    quantity = (Decimal(unused_seconds) / SECONDS_PER_HOUR).quantize(QUANTITY)
    values.update(
        {
            "ChargeCategory": "Usage",
            "ChargeFrequency": "Usage-Based",
            "ChargeDescription": f"Unused reserved time of {row['gpus']}x NVIDIA H100 in {row['code']}",
            "ChargePeriodStart": iso(row["lo"]),
            "ChargePeriodEnd": iso(row["hi"]),
            "ConsumedQuantity": Decimal(0),
            "ConsumedUnit": UNIT,
            "PricingQuantity": quantity,
            "BilledCost": Decimal("0.00"),
            "EffectiveCost": exact.quantize(PLACES),
            "ListCost": exact.quantize(PLACES),
            "ContractedCost": exact.quantize(PLACES),
            "CapacityReservationId": _reservation(row["public_id"]),
            "CapacityReservationStatus": "Unused",
        }
    )
    return values


def _entries(scope: Scope, wanted: ExportFilter) -> QuerySet[LedgerEntry]:
    entries = LedgerEntry.objects.filter(
        kind__in=(LedgerKind.COMMITMENT, LedgerKind.COMMITMENT_REFUND), period_start__isnull=False
    )
    if not scope.everyone:
        entries = entries.filter(organization=scope.organization)
    if wanted.period_from:
        entries = entries.filter(period_start__gte=wanted.period_from)
    if wanted.period_to:
        entries = entries.filter(period_start__lt=wanted.period_to)
    if wanted.region:
        entries = entries.filter(lease__region__code=wanted.region)
    return entries.order_by("organization_id", "period_start", "sequence")


def _commitment_rows(scope: Scope, wanted: ExportFilter) -> Iterator[list[Any]]:
    numbers = _invoice_numbers(scope)
    rows = _entries(scope, wanted).values_list(
        "kind",
        "amount",
        "at",
        "period_start",
        "description",
        "organization_id",
        "organization__public_id",
        "organization__name",
        "lease__public_id",
        "lease__kind",
        "lease__gpus",
        "lease__region__code",
        "lease__region__name",
        "lease__price_per_gpu_hour",
        "lease__start",
        "lease__end",
    )
    for row in rows.iterator(chunk_size=CHUNK):
        kind, amount, at, period, description, org, org_id, org_name, *lease = cast(tuple[Any, ...], row)
        lease_id, lease_kind, gpus, region, region_name, price, start, end = lease
        values = _base(org_id, org_name, period)
        values.update(_lease_fields(lease_id, lease_kind, gpus, region, region_name, price))
        billed = -amount
        purchase = kind == LedgerKind.COMMITMENT
        hours = (Decimal((end - start).total_seconds()) * gpus / SECONDS_PER_HOUR).quantize(QUANTITY)
        values.update(
            {
                "ChargeCategory": "Purchase" if purchase else "Credit",
                "ChargeFrequency": "One-Time",
                "ChargeDescription": description,
                "ChargePeriodStart": iso(at),
                "ChargePeriodEnd": iso(at + timedelta(seconds=1)),
                "PricingQuantity": hours if purchase else None,
                "PricingUnit": UNIT if purchase else None,
                "ListUnitPrice": price if purchase else None,
                "ContractedUnitPrice": price if purchase else None,
                "PricingCategory": "Committed" if purchase else None,
                "BilledCost": billed,
                # The reservation's hours carry its cost as they are used (or go unused).
                "EffectiveCost": Decimal("0.00") if purchase else billed,
                "ListCost": billed,
                "ContractedCost": billed,
                "CapacityReservationId": _reservation(lease_id),
                "InvoiceId": numbers.get((org, period), ""),
            }
        )
        yield _row(values)


def _credit_lines(scope: Scope, wanted: ExportFilter) -> QuerySet[InvoiceLine]:
    lines = InvoiceLine.objects.filter(
        kind__in=(LineKind.SLA_CREDIT, LineKind.PROGRAM_CREDIT, LineKind.CORRECTION),
        invoice__status__in=(InvoiceStatus.OPEN, InvoiceStatus.PAID),
    )
    if not scope.everyone:
        lines = lines.filter(invoice__organization=scope.organization)
    if wanted.period_from:
        lines = lines.filter(invoice__period_start__gte=wanted.period_from)
    if wanted.period_to:
        lines = lines.filter(invoice__period_start__lt=wanted.period_to)
    if wanted.region:
        lines = lines.filter(region__code=wanted.region)
    return lines.order_by("invoice__organization_id", "invoice__period_start", "invoice_id", "position")


def _credit_rows(scope: Scope, wanted: ExportFilter) -> Iterator[list[Any]]:
    rows = _credit_lines(scope, wanted).values_list(
        "kind",
        "amount",
        "description",
        "invoice__number",
        "invoice__kind",
        "invoice__period_start",
        "invoice__period_end",
        "invoice__organization__public_id",
        "invoice__organization__name",
        "region__code",
        "region__name",
    )
    for (
        kind,
        amount,
        description,
        number,
        invoice_kind,
        start,
        end,
        org_id,
        org_name,
        region,
        name,
    ) in rows.iterator(chunk_size=CHUNK):
        values = _base(org_id, org_name, start)
        # A credit note's line is positive on the note; to the customer it is money back.
        billed = -amount if invoice_kind == InvoiceKind.CREDIT_NOTE else amount
        values.update(
            {
                "ChargeCategory": "Credit",
                "ChargeClass": "Correction" if kind == LineKind.CORRECTION else None,
                "ChargeFrequency": "One-Time",
                "ChargeDescription": description,
                "ChargePeriodStart": iso(start),
                "ChargePeriodEnd": iso(end),
                "BilledCost": billed,
                "EffectiveCost": billed,
                "ListCost": Decimal("0.00"),
                "ContractedCost": Decimal("0.00"),
                "InvoiceId": number or "",
                "RegionId": region,
                "RegionName": name,
            }
        )
        yield _row(values)
