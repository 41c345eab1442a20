"""Finance exports: CSV parsed back equals the database, XLSX opens, FOCUS rows are valid."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from openpyxl import load_workbook

from billing.models import Invoice, InvoiceLine, UsageHour
from billing.selectors.focus import FOCUS_COLUMNS
from billing.services.invoicing import invoice_finalize, invoice_mark_paid, month_close
from tests.billing.factories import make_lease
from tests.billing.helpers import FOCUS_REQUIRED

ISO_Z = "%Y-%m-%dT%H:%M:%SZ"


def csv_of(response) -> list[dict[str, str]]:
    raw = b"".join(response.streaming_content)
    assert b"\r\n" in raw and raw.decode("utf-8")
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))


def test_the_invoice_csv_parsed_back_equals_the_database(api_as, frank, march_invoices) -> None:
    response = api_as(frank).get("/api/v1/exports/invoices.csv")
    assert (
        response["Content-Type"].startswith("text/csv") and "invoices.csv" in response["Content-Disposition"]
    )
    rows = {row["number"]: row for row in csv_of(response)}
    assert set(rows) == set(Invoice.objects.values_list("number", flat=True))
    for invoice in Invoice.objects.select_related("organization"):
        row = rows[str(invoice.number)]
        assert (row["organization"], row["status"], row["currency"]) == (
            invoice.organization.name,
            "open",
            "USD",
        )
        assert (Decimal(row["subtotal"]), Decimal(row["credits"]), Decimal(row["total"])) == (
            invoice.subtotal,
            invoice.credits,
            invoice.total,
        )
        assert datetime.strptime(row["issued_at"], ISO_Z).date() == invoice.issued_at.date()


def test_the_line_csv_parsed_back_equals_the_database(api_as, frank, march_invoices) -> None:
    rows = csv_of(api_as(frank).get("/api/v1/exports/invoice-lines.csv"))
    expected = InvoiceLine.objects.order_by("invoice__period_start", "invoice_id", "position")
    assert [(r["invoice_number"], int(r["position"]), Decimal(r["amount"]), r["region"]) for r in rows] == [
        (line.invoice.number, line.position, line.amount, line.region.code) for line in expected
    ]
    assert sum(Decimal(r["amount"]) for r in rows) == sum(i.total for i in Invoice.objects.all())


def test_a_description_with_commas_quotes_and_accents_survives_the_round_trip(api_as, alice, acme) -> None:
    march = datetime(2026, 3, 1, tzinfo=UTC)
    make_lease(organization=acme, start=march, end=march + timedelta(hours=2), gpus=1)
    month_close(period_start=march, now=datetime(2026, 4, 1, 1, tzinfo=UTC), finalize=False)
    draft = Invoice.objects.get(organization=acme)
    # Written on the draft: once finalized, PostgreSQL refuses any change of its lines.
    InvoiceLine.objects.filter(invoice=draft, position=1).update(
        description='Entraînement "big", phase 2\nnext line'
    )
    invoice_finalize(actor=None, invoice=draft)
    rows = csv_of(api_as(alice).get("/api/v1/exports/invoice-lines.csv"))
    assert rows[0]["description"] == 'Entraînement "big", phase 2\nnext line'


def test_exports_filter_by_status_region_and_period(api_as, frank, march_invoices) -> None:
    invoice_mark_paid(actor=frank, invoice=march_invoices["globex"])
    paid = csv_of(api_as(frank).get("/api/v1/exports/invoices.csv?status=paid"))
    assert [row["number"] for row in paid] == [march_invoices["globex"].number]
    virginia = csv_of(api_as(frank).get("/api/v1/exports/invoice-lines.csv?region=us-va-1"))
    assert [row["region"] for row in virginia] == ["us-va-1"]
    assert csv_of(api_as(frank).get("/api/v1/exports/invoices.csv?period_from=2026-04-01")) == []
    assert (
        len(
            csv_of(
                api_as(frank).get("/api/v1/exports/invoices.csv?period_from=2026-03-01&period_to=2026-04-01")
            )
        )
        == 2
    )
    bad = api_as(frank).get("/api/v1/exports/invoices.csv?status=lost")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


def test_the_xlsx_opens_with_openpyxl_and_matches(api_as, frank, march_invoices) -> None:
    response = api_as(frank).get("/api/v1/exports/invoice-lines.xlsx")
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)["Invoice lines"]
    rows = list(sheet.iter_rows(values_only=True))
    assert (
        rows[0][:2] == ("invoice_number", "invoice_status") and len(rows) == InvoiceLine.objects.count() + 1
    )
    amounts = [Decimal(str(row[rows[0].index("amount")])) for row in rows[1:]]
    assert sum(amounts) == sum(line.amount for line in InvoiceLine.objects.all())


def test_the_xlsx_has_dates_as_excel_dates_and_amounts_as_numbers(api_as, frank, march_invoices) -> None:
    response = api_as(frank).get("/api/v1/exports/invoices.xlsx")
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)))["Invoices"]
    header = [cell.value for cell in sheet[1]]
    first = {name: cell for name, cell in zip(header, sheet[2], strict=True)}
    assert first["period_start"].is_date and first["issued_at"].is_date
    assert first["period_start"].value == datetime(2026, 3, 1)  # naive UTC: Excel has no zones
    assert first["total"].data_type == "n" and isinstance(first["total"].value, int | float)
    invoice = Invoice.objects.get(number=first["number"].value)
    assert Decimal(str(first["total"].value)) == invoice.total


def test_the_focus_file_has_the_required_columns_with_valid_values(api_as, frank, march_invoices) -> None:
    rows = csv_of(api_as(frank).get("/api/v1/exports/focus.csv"))
    assert set(rows[0]) >= FOCUS_REQUIRED and list(rows[0]) == FOCUS_COLUMNS
    assert len(rows) == UsageHour.objects.count()  # one row per lease and hour
    for row in rows:
        assert row["ChargeCategory"] in {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}
        assert row["ChargeClass"] in {"", "Correction"}
        assert row["ChargeFrequency"] in {"One-Time", "Recurring", "Usage-Based"}
        assert row["PricingCategory"] in {"Standard", "Dynamic", "Committed", "Other"}
        assert row["ServiceCategory"] == "Compute" and row["BillingCurrency"] == "USD"
        start, end = (datetime.strptime(row[c], ISO_Z) for c in ("ChargePeriodStart", "ChargePeriodEnd"))
        assert (end - start).total_seconds() == 3600
        assert datetime.strptime(row["BillingPeriodStart"], ISO_Z) <= start
        for column in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity"):
            assert Decimal(row[column]) >= 0
        quantity_times_price = Decimal(row["PricingQuantity"]) * Decimal(row["ListUnitPrice"])
        assert abs(Decimal(row["BilledCost"]) - quantity_times_price) < Decimal("0.0001")
        assert row["InvoiceId"].startswith("VP-") and json.loads(row["Tags"])
    total = sum(Decimal(row["BilledCost"]) for row in rows)
    assert abs(total - sum(i.subtotal for i in Invoice.objects.all())) < Decimal("0.01")
