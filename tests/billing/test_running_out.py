"""Running out: runway warnings once each, bookings refused at zero, on-demand leases released after
the grace period with an email, reserved ones left to run; dunning on invoice terms."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from accounts.choices import Role
from billing.choices import InvoiceKind, InvoiceStatus, PaymentTerms
from billing.models import BillingAccount, Invoice, InvoiceReminder, LedgerEntry
from billing.services.accounts import account_suspend
from billing.services.dunning import dunning_sweep, invoice_apply_stripe_state
from billing.services.runway import balances_watch
from billing.services.top_ups import top_up_record
from clusters.choices import LeaseKind
from clusters.models import Lease
from tests.billing.factories import make_lease
from tests.factories import MembershipFactory, OrganizationFactory

LEASES = "/api/v1/leases/"


@pytest.fixture
def ola(db):
    organization = OrganizationFactory.create(name="Orbit Labs", slug="orbit", terms=PaymentTerms.PREPAID)
    return MembershipFactory.create(
        user__email="ola@orbit.example", organization=organization, role=Role.OWNER
    ).user


def org_of(user):
    return user.memberships.get().organization


def running(organization, gpus=8, price="2.5000", hours_ago=0.0, kind=LeaseKind.ON_DEMAND, node=None):
    start = timezone.now() - timedelta(hours=hours_ago)
    end = start + timedelta(hours=48) if kind == LeaseKind.RESERVED else None
    return make_lease(
        organization=organization, start=start, end=end, gpus=gpus, price=price, kind=kind, node=node
    )


def test_a_runway_under_an_hour_warns_once(ola, django_capture_on_commit_callbacks) -> None:
    top_up_record(organization=org_of(ola), amount=Decimal("15.00"), external_id="t1", description="t")
    running(org_of(ola))  # 8 × 2.50 = 20 USD an hour: 45 minutes left
    with django_capture_on_commit_callbacks(execute=True):
        balances_watch()
        balances_watch()
    subjects = [m.subject for m in mail.outbox]
    assert subjects.count("Voltpark: your balance runs out in under 1 hour") == 1
    assert subjects.count("Voltpark: your balance runs out in under 24 hours") == 1
    assert mail.outbox[0].to == ["ola@orbit.example", "billing@orbit.example.com"]


def test_a_runway_of_hours_warns_at_24_hours_and_not_yet_at_1(
    ola, django_capture_on_commit_callbacks
) -> None:
    top_up_record(organization=org_of(ola), amount=Decimal("200.00"), external_id="t1", description="t")
    running(org_of(ola))  # 20 USD an hour: 10 hours left
    with django_capture_on_commit_callbacks(execute=True):
        balances_watch()
    assert [m.subject for m in mail.outbox] == ["Voltpark: your balance runs out in under 24 hours"]
    account = BillingAccount.objects.get(pk=org_of(ola).pk)
    assert account.runway_24h_warned_at is not None and account.runway_1h_warned_at is None


def test_at_zero_bookings_are_refused_and_on_demand_is_released_after_the_grace(
    ola, settings, api_as, seeded_fleet, django_capture_on_commit_callbacks
) -> None:
    top_up_record(organization=org_of(ola), amount=Decimal("5.00"), external_id="t1", description="t")
    on_demand = running(org_of(ola), hours_ago=1, node=seeded_fleet[0])  # 20 USD used: 15 below zero
    reserved = running(org_of(ola), gpus=1, kind=LeaseKind.RESERVED, hours_ago=1, node=seeded_fleet[1])
    with django_capture_on_commit_callbacks(execute=True):
        balances_watch()
    assert BillingAccount.objects.get(pk=org_of(ola).pk).exhausted_at is not None
    assert any(m.subject == "Voltpark: your balance has run out" for m in mail.outbox)
    refused = api_as(ola).post(LEASES, {"region": "us-tx-1", "gpus": 1, "kind": "on_demand"}, format="json")
    assert refused.status_code == 402 and refused.json()["code"] == "balance_exhausted"
    with django_capture_on_commit_callbacks(execute=True):
        balances_watch()  # still within the grace period: nothing released
    assert Lease.objects.get(pk=on_demand.pk).end is None
    later = timezone.now() + settings.RUN_OUT_GRACE + timedelta(seconds=5)
    with django_capture_on_commit_callbacks(execute=True):
        report = balances_watch(now=later)
    assert report.released == [on_demand.pk]
    assert Lease.objects.get(pk=on_demand.pk).end is not None
    assert Lease.objects.get(pk=reserved.pk).end == reserved.end  # paid: runs to its end
    released = [m for m in mail.outbox if m.subject == "Voltpark: on-demand leases released"]
    assert len(released) == 1 and str(on_demand.public_id) in released[0].body


def test_a_top_up_ends_the_episode(ola, django_capture_on_commit_callbacks) -> None:
    top_up_record(organization=org_of(ola), amount=Decimal("5.00"), external_id="t1", description="t")
    running(org_of(ola), hours_ago=1)
    with django_capture_on_commit_callbacks(execute=True):
        balances_watch()
    top_up_record(organization=org_of(ola), amount=Decimal("500.00"), external_id="t2", description="t")
    account = BillingAccount.objects.get(pk=org_of(ola).pk)
    assert account.exhausted_at is None and account.runway_1h_warned_at is None


def test_a_suspended_organizations_on_demand_leases_are_released_after_the_notice(
    ola, settings, seeded_fleet, django_capture_on_commit_callbacks
) -> None:
    # Money is not the reason (the balance covers days): the suspension is (dunning, a dispute).
    top_up_record(organization=org_of(ola), amount=Decimal("5000.00"), external_id="t1", description="t")
    on_demand = running(org_of(ola), node=seeded_fleet[0])
    reserved = running(org_of(ola), gpus=1, kind=LeaseKind.RESERVED, node=seeded_fleet[1])
    account_suspend(actor=None, organization=org_of(ola), reason="invoice overdue")
    with django_capture_on_commit_callbacks(execute=True):
        assert balances_watch().released == []  # the notice runs first
    assert Lease.objects.get(pk=on_demand.pk).end is None
    later = timezone.now() + settings.RUN_OUT_GRACE + timedelta(seconds=5)
    with django_capture_on_commit_callbacks(execute=True):
        assert balances_watch(now=later).released == [on_demand.pk]
    assert Lease.objects.get(pk=on_demand.pk).end is not None
    assert Lease.objects.get(pk=reserved.pk).end == reserved.end
    [released] = [m for m in mail.outbox if m.subject == "Voltpark: on-demand leases released"]
    assert "the account is suspended" in released.body and str(on_demand.public_id) in released.body


@pytest.fixture
def overdue(acme, alice, seeded_fleet) -> Invoice:
    """Acme on invoice terms with an open invoice (the test reckons from its due date)."""
    node = seeded_fleet[2]
    from billing.services.invoicing import month_close
    from core.periods import previous_month

    month = previous_month()
    make_lease(
        organization=acme, start=month, end=month + timedelta(hours=10), gpus=8, price="2.0000", node=node
    )
    month_close(period_start=month)
    return Invoice.objects.get(organization=acme, kind=InvoiceKind.INVOICE)


def test_reminders_go_once_and_a_long_overdue_invoice_suspends_bookings(
    overdue, acme, alice, api_as, settings, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        dunning_sweep(now=overdue.due_at + timedelta(days=1, minutes=1))
        dunning_sweep(now=overdue.due_at + timedelta(days=1, minutes=2))
    assert sorted(InvoiceReminder.objects.values_list("days_from_due", flat=True)) == [-7, -1, 1]
    assert sum("is overdue" in m.subject for m in mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        found = dunning_sweep(
            now=overdue.due_at + timedelta(days=settings.DUNNING_SUSPEND_AFTER_DAYS, hours=1)
        )
    assert found["suspended"] == 1
    refused = api_as(alice).post(LEASES, {"region": "us-tx-1", "gpus": 1, "kind": "on_demand"}, format="json")
    assert refused.status_code == 402 and refused.json()["code"] == "account_suspended"
    # Stripe says it is paid: the payment is in the ledger, and the suspension is lifted.
    overdue.stripe_invoice_id = "in_paid"
    overdue.save(update_fields=["stripe_invoice_id"])
    invoice_apply_stripe_state(
        stripe_id="in_paid",
        status="paid",
        paid_at=None,
        amount_paid=int(overdue.total * 100),
        failed=False,
        event_id="evt_1",
    )
    assert Invoice.objects.get(pk=overdue.pk).status == InvoiceStatus.PAID
    assert LedgerEntry.objects.get(kind="invoice_payment").amount == overdue.total
    assert BillingAccount.objects.get(pk=acme.pk).suspended_at is None
