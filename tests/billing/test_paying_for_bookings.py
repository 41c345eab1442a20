"""Booking needs a way to pay; a reserved lease is paid when booked; the owner's limits hold."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.choices import Role
from billing.choices import LedgerKind, PaymentTerms
from billing.models import BillingAccount, LedgerEntry
from billing.services.accounts import account_set_terms
from billing.services.top_ups import top_up_record
from clusters.choices import LeaseState
from clusters.models import Lease
from programs.services.early_stage import early_stage_apply, early_stage_approve
from tests.factories import MembershipFactory, OrganizationFactory

LEASES = "/api/v1/leases/"


@pytest.fixture
def dana(seeded_fleet):
    """Dana just signed up Tiny Labs: prepaid, no card, no balance."""
    organization = OrganizationFactory.create(name="Tiny Labs", slug="tiny-labs", terms=PaymentTerms.PREPAID)
    return MembershipFactory.create(
        user__email="dana@tiny.example", organization=organization, role=Role.OWNER
    ).user


def tiny(dana):
    return dana.memberships.get().organization


def reserved(hours: int = 2, ahead: timedelta = timedelta(days=3)) -> dict:
    start = (timezone.now() + ahead).replace(second=0, microsecond=0)
    return {
        "region": "us-tx-1",
        "gpus": 8,
        "kind": "reserved",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=hours)).isoformat(),
    }


def top_up(organization, amount: str) -> None:
    top_up_record(
        organization=organization, amount=Decimal(amount), external_id=f"t-{amount}", description="t"
    )


def test_a_new_organization_without_a_way_to_pay_gets_402_and_nothing_is_booked(dana, api_as) -> None:
    response = api_as(dana).post(LEASES, {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"}, format="json")
    assert response.status_code == 402
    assert response.json()["code"] == "payment_required"
    assert "Add a card or top up" in response.json()["detail"] and "/billing/" in response.json()["detail"]
    assert not Lease.objects.filter(organization=tiny(dana)).exists()


def test_early_stage_credit_approved_by_staff_lets_it_book(dana, stella, api_as) -> None:
    body = {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"}
    assert api_as(dana).post(LEASES, body, format="json").json()["code"] == "payment_required"
    application = early_stage_apply(
        actor=dana,
        organization=tiny(dana),
        what_we_build="Speech models",
        stage="seed",
        funding="$1M pre-seed",
        gpus_wanted=8,
        why="Fine-tuning",
    )
    early_stage_approve(
        actor=stella,
        application=application,
        gpu_quota=16,
        credit_amount=Decimal("2000"),
        credit_expires_at=timezone.now() + timedelta(days=180),
        note="",
    )
    response = api_as(dana).post(LEASES, body, format="json")
    assert response.status_code == 201, response.json()


def test_a_positive_balance_lets_it_book_on_demand(dana, api_as) -> None:
    top_up(tiny(dana), "100.00")
    response = api_as(dana).post(LEASES, {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"}, format="json")
    assert response.status_code == 201
    # On-demand is debited as it runs, not when booked.
    assert not LedgerEntry.objects.filter(organization=tiny(dana), kind=LedgerKind.COMMITMENT).exists()


def test_a_reserved_lease_is_charged_for_its_whole_window_when_booked(dana, api_as) -> None:
    top_up(tiny(dana), "500.00")
    response = api_as(dana).post(LEASES, reserved(hours=2), format="json")
    assert response.status_code == 201, response.json()
    lease = Lease.objects.get(organization=tiny(dana))
    entry = LedgerEntry.objects.get(organization=tiny(dana), kind=LedgerKind.COMMITMENT)
    assert entry.lease_id == lease.pk
    assert entry.amount == -(lease.price_per_gpu_hour * 8 * 2).quantize(Decimal("0.01"))
    assert BillingAccount.objects.get(pk=tiny(dana).pk).balance == Decimal("500.00") + entry.amount


def test_a_reserved_booking_reads_the_account_and_the_usage_not_yet_debited_once(dana, api_as) -> None:
    # The payment check and the commitment's floor are the same figures: read once, then the
    # account is locked once to write the entry (the balance re-read under the lock).
    top_up(tiny(dana), "500.00")
    with CaptureQueriesContext(connection) as queries:
        response = api_as(dana).post(LEASES, reserved(hours=2), format="json")
    assert response.status_code == 201, response.json()
    account = [q["sql"] for q in queries.captured_queries if 'FROM "billing_billingaccount"' in q["sql"]]
    assert [sql.endswith("FOR UPDATE") for sql in account] == [False, True]
    usage = [q for q in queries.captured_queries if 'FROM "billing_monthlyusagecharge"' in q["sql"]]
    assert len(usage) == 1
    entry = LedgerEntry.objects.get(organization=tiny(dana), kind=LedgerKind.COMMITMENT)
    assert entry.sequence == 2 and entry.balance_after == Decimal("500.00") + entry.amount
    assert BillingAccount.objects.get(pk=tiny(dana).pk).balance == entry.balance_after


def test_a_reserved_lease_the_balance_does_not_cover_gets_402_and_charges_nothing(dana, api_as) -> None:
    top_up(tiny(dana), "10.00")
    response = api_as(dana).post(LEASES, reserved(hours=10), format="json")
    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_balance"
    assert "Top up at least" in response.json()["detail"]
    assert not Lease.objects.filter(organization=tiny(dana)).exists()
    assert BillingAccount.objects.get(pk=tiny(dana).pk).balance == Decimal("10.00")


def test_cancelling_in_time_refunds_the_commitment(dana, api_as) -> None:
    top_up(tiny(dana), "500.00")
    lease_id = api_as(dana).post(LEASES, reserved(ahead=timedelta(days=3)), format="json").json()["id"]
    assert api_as(dana).post(f"{LEASES}{lease_id}/cancel/").status_code == 200
    assert BillingAccount.objects.get(pk=tiny(dana).pk).balance == Decimal("500.00")
    assert LedgerEntry.objects.filter(kind=LedgerKind.COMMITMENT_REFUND, organization=tiny(dana)).count() == 1


def test_cancelling_within_a_day_of_the_start_refunds_nothing(dana, api_as) -> None:
    top_up(tiny(dana), "500.00")
    lease_id = api_as(dana).post(LEASES, reserved(ahead=timedelta(hours=5)), format="json").json()["id"]
    charged = BillingAccount.objects.get(pk=tiny(dana).pk).balance
    assert api_as(dana).post(f"{LEASES}{lease_id}/cancel/").status_code == 200
    assert BillingAccount.objects.get(pk=tiny(dana).pk).balance == charged < Decimal("500.00")
    assert not LedgerEntry.objects.filter(kind=LedgerKind.COMMITMENT_REFUND).exists()


def test_releasing_a_reserved_lease_early_frees_its_gpus_and_refunds_nothing(dana, api_as) -> None:
    top_up(tiny(dana), "500.00")
    lease_id = api_as(dana).post(LEASES, reserved(hours=10, ahead=timedelta(0)), format="json").json()["id"]
    Lease.objects.filter(organization=tiny(dana)).update(state=LeaseState.ACTIVE, started_at=timezone.now())
    charged = BillingAccount.objects.get(pk=tiny(dana).pk).balance
    assert api_as(dana).post(f"{LEASES}{lease_id}/release/").status_code == 200
    lease = Lease.objects.get(organization=tiny(dana))
    assert lease.state == LeaseState.ACTIVE and lease.end <= timezone.now()  # its GPUs free for others
    assert BillingAccount.objects.get(pk=tiny(dana).pk).balance == charged < Decimal("500.00")
    assert not LedgerEntry.objects.filter(kind=LedgerKind.COMMITMENT_REFUND).exists()


def test_on_invoice_terms_a_booking_past_the_credit_limit_gets_402_credit_limit(dana, api_as) -> None:
    account_set_terms(
        actor=None, organization=tiny(dana), terms=PaymentTerms.INVOICED, credit_limit=Decimal("100.00")
    )
    response = api_as(dana).post(LEASES, reserved(hours=10), format="json")  # 8 GPUs, 10 hours: over 100
    assert response.status_code == 402 and response.json()["code"] == "credit_limit"
    assert not Lease.objects.filter(organization=tiny(dana)).exists()
    within = api_as(dana).post(LEASES, reserved(hours=2), format="json")
    assert within.status_code == 201, within.json()
    entry = LedgerEntry.objects.get(organization=tiny(dana), kind=LedgerKind.COMMITMENT)
    assert BillingAccount.objects.get(pk=tiny(dana).pk).balance == entry.amount < 0  # owed, on the invoice


def test_a_booking_past_the_monthly_spend_limit_gets_402_spend_limit(dana, api_as) -> None:
    top_up(tiny(dana), "500.00")
    settings = {"monthly_spend_limit": "10.00"}
    assert api_as(dana).put("/api/v1/balance/settings/", settings, format="json").status_code == 200
    response = api_as(dana).post(LEASES, {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"}, format="json")
    assert response.status_code == 402
    assert response.json()["code"] == "spend_limit" and "10.00" in response.json()["detail"]
    assert not Lease.objects.filter(organization=tiny(dana)).exists()


def test_the_balance_api_shows_balance_rate_and_runway(dana, api_as) -> None:
    top_up(tiny(dana), "100.00")
    api_as(dana).post(LEASES, {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"}, format="json")
    body = api_as(dana).get("/api/v1/balance/").json()
    lease = Lease.objects.get(organization=tiny(dana))
    assert Decimal(body["balance"]) == Decimal("100.00")
    assert Decimal(body["spend_rate_per_hour"]) == lease.price_per_gpu_hour * 8
    assert body["runway_hours"] == pytest.approx(100 / float(lease.price_per_gpu_hour * 8), abs=0.02)
    assert body["runs_out_at"] and body["card"] is None and body["terms"] == "prepaid"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"monthly_spend_limit": "-1"}, "monthly_spend_limit"),
        ({"monthly_spend_limit": "100", "low_balance_threshold": "500"}, "low_balance_threshold"),
        ({"auto_top_up_threshold": "20", "auto_top_up_amount": "1"}, "auto_top_up_amount"),
        ({"auto_top_up_threshold": "20"}, "auto_top_up_amount"),
        (
            {"monthly_spend_limit": "100", "auto_top_up_threshold": "200", "auto_top_up_amount": "50"},
            "auto_top_up_threshold",
        ),
    ],
)
def test_bad_spend_settings_get_400_naming_the_field_and_change_nothing(dana, api_as, body, field) -> None:
    response = api_as(dana).put("/api/v1/balance/settings/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    account = BillingAccount.objects.filter(pk=tiny(dana).pk).first()
    assert account is None or account.monthly_spend_limit is None


def test_a_spend_limit_below_this_months_commitments_gets_400(dana, api_as) -> None:
    top_up(tiny(dana), "500.00")
    api_as(dana).post(LEASES, reserved(hours=2), format="json")
    response = api_as(dana).put("/api/v1/balance/settings/", {"monthly_spend_limit": "1.00"}, format="json")
    assert response.status_code == 400
    assert "already" in response.json()["fields"]["monthly_spend_limit"][0]


def test_a_top_up_below_the_minimum_gets_400_naming_the_amount(dana, api_as) -> None:
    response = api_as(dana).post("/api/v1/balance/top-ups/", {"amount": "1.00"}, format="json")
    assert response.status_code == 400
    assert "amount" in response.json()["fields"]


def test_members_cannot_change_payment_settings(dana, api_as) -> None:
    member = MembershipFactory.create(organization=tiny(dana), role=Role.MEMBER).user
    response = api_as(member).put("/api/v1/balance/settings/", {"monthly_spend_limit": "5"}, format="json")
    assert response.status_code == 403


def test_the_booking_page_links_to_billing_when_payment_is_required(dana, client) -> None:
    client.force_login(dana)
    key = str(dana.ssh_keys.get().public_id)  # ticked, as the page ticks it
    response = client.post(
        "/book/", {"region": "us-tx-1", "gpus": 8, "kind": "on_demand", "tz": "UTC", "ssh_keys": key}
    )
    page = response.content.decode()
    assert response.status_code == 200 and "Add a card or top up your balance before booking" in page
    assert 'data-field="payment-link"><a href="/billing/"' in page
    assert not Lease.objects.filter(organization=tiny(dana)).exists()


def test_the_booking_page_states_the_commitment_before_the_button(dana, client) -> None:
    client.force_login(dana)
    body = reserved(hours=2, ahead=timedelta(days=3))
    start = datetime.fromisoformat(body["start"])
    query = {
        **body,
        "start": f"{start:%Y-%m-%dT%H:%M}",
        "end": f"{start + timedelta(hours=2):%Y-%m-%dT%H:%M}",
    }
    check = client.get("/book/check/", {**query, "tz": "UTC"}).content.decode()
    assert "Paid when booked" in check and "free to cancel until" in check
    assert f"{start - timedelta(hours=24):%Y-%m-%d %H:%M}" in check
    page = client.get("/book/").content.decode()
    assert page.index('id="payment-terms"') < page.index('aria-describedby="payment-terms">Book</button>')
    assert "free until 24 hours before its start" in page
