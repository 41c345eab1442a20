"""The billing pages: roles and tenants, spend so far, credits, invoices with their PDF, paying."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.choices import InvoiceStatus
from billing.models import Invoice
from billing.services.credits import credit_grant_create
from billing.services.invoicing import month_close
from core.periods import month_of, next_month
from tests.billing.factories import make_lease
from tests.helpers import PEOPLE, status_of

LIST_EXPECTED = {"alice": 200, "bob": 403, "fiona": 200, "charlie": 200, "stella": 403, "frank": 403}
MARCH = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def march(acme, globex):
    """March 2026 closed with one invoice for Acme (8 GPUs × 10 h × $1.99) and one for Globex."""
    make_lease(organization=acme, start=MARCH, end=MARCH + timedelta(hours=10), gpus=8, price="1.9900")
    make_lease(organization=globex, start=MARCH, end=MARCH + timedelta(hours=1), gpus=1, price="2.4900")
    month_close(period_start=MARCH, now=datetime(2026, 4, 1, 1, tzinfo=UTC))
    return {invoice.organization.slug: invoice for invoice in Invoice.objects.select_related("organization")}


@pytest.mark.parametrize("who", PEOPLE)
def test_the_billing_page_answers_each_role(client_as, who) -> None:
    assert status_of(client_as(who).get("/billing/")) == LIST_EXPECTED.get(who, "login")


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("page", ["", "pdf/"])
def test_an_invoice_answers_each_role_and_hides_it_from_other_organizations(
    client_as, march, who, page
) -> None:
    expected = {**LIST_EXPECTED, "charlie": 404}.get(who, "login")
    assert status_of(client_as(who).get(f"/billing/invoices/{march['acme-ai'].public_id}/{page}")) == expected


def test_the_page_lists_the_organizations_invoices_only(client_as, march) -> None:
    client = client_as("fiona")
    session = client.session
    session["time_zone"] = "America/Chicago"  # billing months are UTC months, wherever the viewer is
    session.save()
    html = client.get("/billing/").content.decode()
    assert "March 2026" in html and "February 2026" not in html
    assert march["acme-ai"].number in html and "$159.20" in html  # 80 GPU-hours × $1.99
    assert march["globex"].number not in html
    assert f'href="/billing/invoices/{march["acme-ai"].public_id}/pdf/"' in html


def test_the_invoice_page_shows_its_lines(client_as, march) -> None:
    invoice = march["acme-ai"]
    html = client_as("alice").get(f"/billing/invoices/{invoice.public_id}/").content.decode()
    line = invoice.lines.get()
    assert f'data-lease="{line.lease.public_id}"' in html
    assert "80.000" in html and "$159.20" in html


def test_the_pdf_is_a_pdf(client_as, march) -> None:
    response = client_as("alice").get(f"/billing/invoices/{march['acme-ai'].public_id}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_spend_this_month_counts_usage_since_the_first_at_the_booked_price(client_as, acme) -> None:
    now = timezone.now().replace(microsecond=0)
    start, end = now - timedelta(hours=3), now - timedelta(hours=1)
    make_lease(organization=acme, start=start, end=end, gpus=8, price="1.9900")
    seconds = 8 * max((end - max(start, month_of(now))).total_seconds(), 0)
    expected = (Decimal(seconds) * Decimal("1.99") / 3600).quantize(Decimal("0.01"))
    html = client_as("alice").get("/billing/").content.decode()
    assert f'<p class="big" data-field="spend">${expected}</p>' in html


def test_credits_left_are_shown_until_they_expire(client_as, acme) -> None:
    now = timezone.now()
    credit_grant_create(
        actor=None, organization=acme, amount=Decimal("500"), expires_at=now + timedelta(days=90)
    )
    credit_grant_create(
        actor=None,
        organization=acme,
        amount=Decimal("70"),
        granted_at=now - timedelta(days=10),
        expires_at=now - timedelta(days=1),
    )
    html = client_as("alice").get("/billing/").content.decode()
    assert '<p class="big" data-field="credits">$500.00</p>' in html


def test_the_billing_page_costs_the_same_queries_for_2_or_20_invoices(client_as, acme) -> None:
    client = client_as("alice")

    def invoices(months: range) -> None:
        for n in months:
            start = datetime(2024 + n // 12, n % 12 + 1, 1, tzinfo=UTC)
            Invoice.objects.create(
                organization=acme,
                period_start=start,
                period_end=next_month(start),
                status=InvoiceStatus.OPEN,
                number=f"VP-TEST-{n:03d}",
                total=Decimal("10.00"),
            )

    invoices(range(2))
    with CaptureQueriesContext(connection) as few:
        assert client.get("/billing/").status_code == 200
    invoices(range(2, 20))
    with CaptureQueriesContext(connection) as many:
        assert client.get("/billing/").content.decode().count("VP-TEST-") >= 20
    assert len(many) == len(few)


def open_invoice(march, url: str = "https://invoice.stripe.test/i/acme") -> Invoice:
    invoice = march["acme-ai"]
    Invoice.objects.filter(pk=invoice.pk).update(stripe_hosted_url=url)
    return invoice


def test_pay_sends_the_owner_to_stripes_hosted_page(client_as, march, settings) -> None:
    settings.STRIPE_ENABLED = True
    invoice = open_invoice(march)
    client = client_as("fiona")
    assert f'action="/billing/invoices/{invoice.public_id}/pay/"' in client.get("/billing/").content.decode()
    response = client.post(f"/billing/invoices/{invoice.public_id}/pay/")
    assert response.status_code == 302 and response["Location"] == "https://invoice.stripe.test/i/acme"


def test_pay_is_not_offered_when_stripe_is_off(client_as, march, settings) -> None:
    settings.STRIPE_ENABLED = False
    invoice = open_invoice(march)
    client = client_as("alice")
    assert "/pay/" not in client.get("/billing/").content.decode()
    assert client.post(f"/billing/invoices/{invoice.public_id}/pay/").status_code == 404


def test_a_paid_invoice_is_not_paid_twice(client_as, march, settings) -> None:
    settings.STRIPE_ENABLED = True
    invoice = open_invoice(march)
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.PAID)
    client = client_as("alice")
    response = client.post(f"/billing/invoices/{invoice.public_id}/pay/")
    assert response.status_code == 302 and response["Location"] == "/billing/"
    assert "is paid: nothing to pay" in client.get("/billing/").content.decode()
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID


def test_another_organization_cannot_pay_or_see_an_invoice(client_as, march, settings) -> None:
    settings.STRIPE_ENABLED = True
    invoice = open_invoice(march)
    assert client_as("charlie").post(f"/billing/invoices/{invoice.public_id}/pay/").status_code == 404


def test_pay_is_protected_against_cross_site_posts(march, alice, settings) -> None:
    settings.STRIPE_ENABLED = True
    invoice = open_invoice(march)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(f"/billing/invoices/{invoice.public_id}/pay/").status_code == 403
