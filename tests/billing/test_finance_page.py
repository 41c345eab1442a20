"""The staff finance page: month close status and action, invoices by state, export links, revenue."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.choices import InvoiceStatus
from billing.models import Invoice, MonthClose
from billing.services.invoicing import invoice_mark_paid, month_close
from core.periods import month_of, previous_month
from tests.billing.factories import make_lease
from tests.factories import OrganizationFactory
from tests.helpers import csrf_client, queries_for

FINANCE = "/staff/finance/"
CLOSE = "/staff/finance/close-month/"


@pytest.fixture
def last_month_usage(acme, globex):
    """Acme used 8 GPUs for 10 hours last month, Globex 2 GPUs for 3 hours."""
    start = previous_month() + timedelta(days=2)
    make_lease(organization=acme, start=start, end=start + timedelta(hours=10), gpus=8, price="2.0000")
    make_lease(organization=globex, start=start, end=start + timedelta(hours=3), gpus=2, price="2.5000")
    return previous_month()


@pytest.mark.parametrize(
    ("who", "status"),
    [("alice", 403), ("bob", 403), ("fiona", 403), ("charlie", 403), ("stella", 403), ("frank", 200)],
)
def test_the_finance_page_answers_staff_finance_only(client, everyone, who, status) -> None:
    client.force_login(everyone[who])
    assert client.get(FINANCE).status_code == status


def test_an_anonymous_visitor_is_sent_to_log_in(client, db) -> None:
    response = client.get(FINANCE)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_finance_closes_last_month_from_the_page(client, frank, last_month_usage) -> None:
    client.force_login(frank)
    month = f"{last_month_usage:%Y-%m}"
    before = client.get(FINANCE).content.decode()
    row = re.search(rf'<tr data-month="{month}">.*?</tr>', before, re.S).group(0)
    assert "not closed" in row
    response = client.post(CLOSE, {"month": month}, follow=True)
    html = response.content.decode()
    assert f"{last_month_usage:%B %Y} is closed: 2 invoices created, 0 already existed." in html
    close = MonthClose.objects.get(period_start=last_month_usage)
    assert close.invoices_created == 2 and close.finished_at is not None
    invoices = Invoice.objects.filter(period_start=last_month_usage)
    assert sorted(invoices.values_list("total", flat=True)) == [15, 160]
    assert set(invoices.values_list("status", flat=True)) == {InvoiceStatus.OPEN}
    row = re.search(rf'<tr data-month="{month}">.*?</tr>', html, re.S).group(0)
    assert "✓ closed" in row and '<td data-field="invoices">2</td>' in row


def test_the_current_month_cannot_be_closed(client, frank, last_month_usage) -> None:
    client.force_login(frank)
    response = client.post(CLOSE, {"month": f"{month_of(timezone.now()):%Y-%m}"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not MonthClose.objects.exists() and not Invoice.objects.exists()


def test_closing_needs_staff_finance_and_a_csrf_token(client, stella, frank, last_month_usage) -> None:
    client.force_login(stella)
    assert client.post(CLOSE, {"month": f"{last_month_usage:%Y-%m}"}).status_code == 403
    assert csrf_client(frank).post(CLOSE, {"month": f"{last_month_usage:%Y-%m}"}).status_code == 403
    assert not MonthClose.objects.exists()


def test_invoices_are_counted_and_listed_by_state(client, frank, last_month_usage, acme) -> None:
    month_close(period_start=last_month_usage)
    invoice_mark_paid(actor=frank, invoice=Invoice.objects.get(organization=acme))
    client.force_login(frank)
    html = client.get(FINANCE).content.decode()
    paid = re.search(r'<li class="card" data-status="paid">.*?</li>', html, re.S).group(0)
    assert '<span class="big">1</span> paid' in paid and "$160.00" in paid
    only_open = client.get(FINANCE, {"status": "open"}).content.decode()
    table = re.search(r'<table id="invoices">.*?</table>', only_open, re.S).group(0)
    assert "Globex Research" in table and "Acme AI" not in table
    assert "/pdf/" in table


def test_export_links_carry_the_period_and_download_with_the_session(client, frank, last_month_usage) -> None:
    month_close(period_start=last_month_usage)
    client.force_login(frank)
    start, end = last_month_usage.date(), month_of(timezone.now()).date()
    html = client.get(
        FINANCE, {"period_from": start.isoformat(), "period_to": end.isoformat()}
    ).content.decode()
    links = re.findall(r'<a class="button secondary" href="([^"]+)" download>', html)
    query = f"period_from={start.isoformat()}&amp;period_to={end.isoformat()}"
    assert links == [
        f"/api/v1/exports/{name}?{query}"
        for name in ["invoices.csv", "invoices.xlsx", "invoice-lines.csv", "invoice-lines.xlsx", "focus.csv"]
    ]
    response = client.get(links[0].replace("&amp;", "&"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(row["organization"] for row in rows) == ["Acme AI", "Globex Research"]


def test_a_backwards_period_is_refused_next_to_its_field(client, frank) -> None:
    client.force_login(frank)
    response = client.get(FINANCE, {"period_from": "2026-05-01", "period_to": "2026-04-01"})
    assert response.status_code == 200
    assert 'role="alert">Choose a day after the start.' in response.content.decode()


def test_revenue_and_utilization_show_as_a_table_and_a_chart(client, frank, last_month_usage) -> None:
    month_close(period_start=last_month_usage)
    client.force_login(frank)
    html = client.get(FINANCE).content.decode()
    table = re.search(r'<table id="revenue">.*?</table>', html, re.S).group(0)
    assert f"{last_month_usage:%Y-%m}" in table and "175.00" in table  # both leases are in us-tx-1
    assert html.count('<svg class="chart"') == 2
    assert re.search(r"<title [^>]*>Revenue by month and region</title>", html)
    assert re.search(rf"<title>{last_month_usage:%Y-%m}, us-tx-1: 175</title>", html)


def test_the_page_costs_the_same_queries_for_2_or_20_invoices(client, frank) -> None:
    # Two months closed both times (finalized invoices cannot be deleted to start again): 1 + 1
    # invoices, then 1 + 19.
    last = previous_month()
    before = previous_month(last)

    def usage(count: int, month) -> None:
        start = month + timedelta(days=1)
        for _ in range(count):
            make_lease(organization=OrganizationFactory.create(), start=start, end=start + timedelta(hours=1))

    client.force_login(frank)
    usage(1, before)
    month_close(period_start=before)
    usage(1, last)
    month_close(period_start=last)
    few = queries_for(client, FINANCE)
    assert Invoice.objects.count() == 2
    closes = MonthClose.objects.filter(period_start=last)
    closes.delete()
    usage(18, last)
    month_close(period_start=last)
    assert Invoice.objects.count() == 20
    assert queries_for(client, FINANCE) == few


def selected_month(html: str) -> str:
    select = re.search(r'<select name="month".*?</select>', html, re.S).group(0)
    return re.search(r'<option value="([0-9-]+)"[^>]*selected', select).group(1)


def test_month_to_close_preselects_the_latest_month_not_closed_yet(client, frank, last_month_usage) -> None:
    client.force_login(frank)
    last, before_last = last_month_usage, previous_month(last_month_usage)
    assert selected_month(client.get(FINANCE).content.decode()) == f"{last:%Y-%m}"
    month_close(period_start=last)
    assert selected_month(client.get(FINANCE).content.decode()) == f"{before_last:%Y-%m}"
