"""Who may see and change invoices: every role against every invoice and export endpoint."""

from decimal import Decimal

import pytest

from billing.choices import InvoiceKind, InvoiceStatus
from billing.models import Invoice, InvoicePdf

LISTINGS = [
    "/api/v1/invoices/",
    "/api/v1/exports/invoices.csv",
    "/api/v1/exports/invoices.xlsx",
    "/api/v1/exports/invoice-lines.csv",
    "/api/v1/exports/invoice-lines.xlsx",
    "/api/v1/exports/focus.csv",
]
DETAILS = ["/api/v1/invoices/{id}/", "/api/v1/invoices/{id}/pdf/"]


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def names_in(response) -> set[str]:
    """Which organizations appear in a listing or export (XLSX is unzipped text)."""
    if response["Content-Type"].startswith("application/vnd.openxml"):
        import io

        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(body(response)), read_only=True).active
        text = " ".join(str(cell) for row in sheet.iter_rows(values_only=True) for cell in row)
    else:
        text = body(response).decode()
    found = {"acme": ("Acme AI", "acme-ai"), "globex": ("Globex Research", "globex")}
    return {org for org, names in found.items() if any(name in text for name in names)}


@pytest.mark.parametrize("url", LISTINGS)
def test_alice_and_fiona_see_only_acme(api_as, alice, fiona, march_invoices, url) -> None:
    for person in (alice, fiona):
        response = api_as(person).get(url)
        assert response.status_code == 200 and names_in(response) == {"acme"}


@pytest.mark.parametrize("url", LISTINGS)
def test_bob_a_member_may_not_see_invoices(api_as, bob, march_invoices, url) -> None:
    response = api_as(bob).get(url)
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("url", LISTINGS)
def test_charlie_never_sees_acmes_rows(api_as, charlie, march_invoices, url) -> None:
    response = api_as(charlie).get(url)
    assert response.status_code == 200 and names_in(response) == {"globex"}


@pytest.mark.parametrize("url", LISTINGS)
def test_frank_staff_finance_sees_every_organization(api_as, frank, march_invoices, url) -> None:
    response = api_as(frank).get(url)
    assert response.status_code == 200 and names_in(response) == {"acme", "globex"}


@pytest.mark.parametrize("url", LISTINGS)
def test_stella_staff_admin_is_not_finance(api_as, stella, march_invoices, url) -> None:
    response = api_as(stella).get(url)
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("url", DETAILS)
def test_each_role_on_acmes_invoice(api_as, alice, bob, fiona, charlie, frank, march_invoices, url) -> None:
    path = url.format(id=march_invoices["acme-ai"].public_id)
    expected = {alice: 200, fiona: 200, frank: 200, bob: 403, charlie: 404}
    assert {person: api_as(person).get(path).status_code for person in expected} == expected


def test_the_invoice_detail_has_its_lines_and_totals(api_as, alice, march_invoices) -> None:
    invoice = march_invoices["acme-ai"]
    data = api_as(alice).get(f"/api/v1/invoices/{invoice.public_id}/").json()
    assert (data["number"], data["status"], data["total"]) == (invoice.number, "open", str(invoice.total))
    assert [line["region"] for line in data["lines"]] == ["us-tx-1", "us-va-1"]
    assert data["lines"][0]["gpu_hours"] == "80.000" and data["lines"][0]["amount"] == "159.20"


def test_the_pdf_is_a_pdf_with_the_invoice_number(api_as, alice, march_invoices) -> None:
    invoice = march_invoices["acme-ai"]
    response = api_as(alice).get(f"/api/v1/invoices/{invoice.public_id}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF") and invoice.number in response["Content-Disposition"]
    stored = InvoicePdf.objects.get(invoice=invoice)  # stored once rendered, and served from there
    assert bytes(stored.content) == response.content
    assert api_as(alice).get(f"/api/v1/invoices/{invoice.public_id}/pdf/").content == response.content
    assert InvoicePdf.objects.filter(invoice=invoice).count() == 1


def test_a_malformed_invoice_id_is_a_404(api_as, alice, march_invoices) -> None:
    assert api_as(alice).get("/api/v1/invoices/12/").status_code == 404


ACTIONS = [
    ("mark-paid", {}),
    ("void", {"reason": "wrong"}),
    ("credit-notes", {"amount": "1.00", "reason": "goodwill"}),
    ("finalize", {}),
]


@pytest.mark.parametrize(("action", "data"), ACTIONS)
def test_only_staff_finance_change_invoices(
    api_as, alice, fiona, charlie, march_invoices, action, data
) -> None:
    invoice = march_invoices["acme-ai"]
    for person in (alice, fiona, charlie):
        response = api_as(person).post(f"/api/v1/invoices/{invoice.public_id}/{action}/", data, format="json")
        assert response.status_code == 403
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.OPEN and Invoice.objects.count() == 2


def test_frank_marks_paid_and_a_second_time_is_a_409(api_as, frank, march_invoices) -> None:
    url = f"/api/v1/invoices/{march_invoices['acme-ai'].public_id}/mark-paid/"
    first = api_as(frank).post(url)
    assert first.status_code == 200 and first.json()["status"] == "paid"
    again = api_as(frank).post(url)
    assert again.status_code == 409 and again.json()["code"] == "invoice_state"
    assert Invoice.objects.get(pk=march_invoices["acme-ai"].pk).status == InvoiceStatus.PAID


def test_frank_voids_and_issues_credit_notes(api_as, frank, march_invoices) -> None:
    acme, globex = march_invoices["acme-ai"], march_invoices["globex"]
    note = api_as(frank).post(
        f"/api/v1/invoices/{acme.public_id}/credit-notes/", {"amount": "3.50", "reason": "x"}, format="json"
    )
    assert note.status_code == 201 and note.json()["kind"] == "credit_note" and note.json()["total"] == "3.50"
    void = api_as(frank).post(f"/api/v1/invoices/{globex.public_id}/void/", {"reason": "dup"}, format="json")
    assert (
        void.status_code == 200 and void.json()["status"] == "void" and void.json()["number"] == globex.number
    )
    too_much = api_as(frank).post(
        f"/api/v1/invoices/{acme.public_id}/credit-notes/", {"amount": "99999", "reason": "x"}, format="json"
    )
    assert too_much.status_code == 409 and too_much.json()["code"] == "credit_note_too_large"
    [credit_note] = Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE)
    assert (credit_note.corrects_id, credit_note.total, str(credit_note.public_id)) == (
        acme.pk,
        Decimal("3.50"),
        note.json()["id"],
    )
    voided = Invoice.objects.get(pk=globex.pk)
    assert (voided.status, voided.number, voided.note) == (InvoiceStatus.VOID, globex.number, "dup")
    assert Invoice.objects.get(pk=acme.pk).status == InvoiceStatus.OPEN


def test_usage_is_visible_to_every_member_of_the_organization_only(
    api_as, alice, bob, charlie, march_invoices
) -> None:
    query = "?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z"
    acme_rows = api_as(bob).get("/api/v1/usage/" + query).json()
    assert [row["gpu_seconds"] for row in acme_rows[:3]] == [9 * 3600, 9 * 3600, 8 * 3600]
    assert len(acme_rows) == 10 and api_as(alice).get("/api/v1/usage/" + query).json() == acme_rows
    assert [row["gpu_seconds"] for row in api_as(charlie).get("/api/v1/usage/" + query).json()] == [7200] * 3


def test_revenue_by_month_and_region_is_for_staff_finance(api_as, alice, frank, march_invoices) -> None:
    assert (
        api_as(alice).get("/api/v1/revenue/?period_from=2026-03-01&period_to=2026-04-01").status_code == 403
    )
    rows = api_as(frank).get("/api/v1/revenue/?period_from=2026-03-01&period_to=2026-04-01").json()
    texas = next(row for row in rows if row["region"] == "us-tx-1")
    # Texas: 80 GPU-h of Acme at 1.99 and 6 of Globex at 2.49; two nodes of 8 GPUs there, 744 hours.
    assert texas["revenue"] == "174.14" and texas["gpu_hours_sold"] == "86.000"
    assert texas["gpu_hours_available"] == "11904.000" and texas["utilization"] == "0.0072"
    assert [row["region"] for row in rows] == ["us-tx-1", "us-va-1"]
