"""`manage.py seed_demo` makes a lively demo: leases booked, an application waiting, last month closed."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from billing.choices import InvoiceStatus
from billing.models import Invoice, MonthClose
from clusters.choices import LeaseKind, LeaseState
from clusters.models import Allocation, Lease, Region
from clusters.selectors.prices import price_for
from core.periods import previous_month
from programs.choices import ApplicationStatus
from programs.models import EarlyStageApplication


@pytest.fixture
def seed(db, settings, tmp_path):
    settings.DATA_DIR = tmp_path

    def run() -> str:
        out = StringIO()
        call_command("seed_demo", nodes=12, agent_port=18690, stdout=out)
        return out.getvalue()

    return run


def test_the_demo_has_leases_an_application_and_a_closed_month(seed) -> None:
    output = seed()
    assert "founder@demo.voltpark.dev" in output and "Booked 3 leases for Acme AI" in output
    live = Lease.objects.filter(organization__slug="acme-ai", state=LeaseState.SCHEDULED)
    assert sorted(live.values_list("gpus", flat=True)) == [2, 4, 8]
    assert Allocation.objects.filter(lease__in=live, is_live=True).count() == 14
    application = EarlyStageApplication.objects.get()
    assert (application.organization.slug, application.status) == ("nebula-labs", ApplicationStatus.PENDING)
    month = previous_month()
    assert MonthClose.objects.get(period_start=month).invoices_created == 2
    invoices = Invoice.objects.filter(period_start=month)
    assert {i.organization.slug for i in invoices} == {"acme-ai", "nebula-labs"}
    assert all(i.total > 0 for i in invoices)
    # Acme pays on invoice terms; Nebula Labs is prepaid, its invoice paid from its balance.
    assert {i.organization.slug: i.status for i in invoices} == {
        "acme-ai": InvoiceStatus.OPEN,
        "nebula-labs": InvoiceStatus.PAID,
    }


def test_seeding_again_changes_nothing(seed) -> None:
    seed()
    counts = (Lease.objects.count(), Invoice.objects.count(), EarlyStageApplication.objects.count())
    output = seed()
    assert "Booked" not in output and "Closed" not in output
    assert (Lease.objects.count(), Invoice.objects.count(), EarlyStageApplication.objects.count()) == counts
    assert User.objects.filter(email__endswith="@demo.voltpark.dev").count() == 6


def test_the_demo_prices_each_region_on_its_own_with_reserved_term_tiers(seed) -> None:
    seed()
    now = timezone.now()
    quoted = {
        region.code: (
            price_for(kind=LeaseKind.ON_DEMAND, region=region, at=now),
            *(
                price_for(kind=LeaseKind.RESERVED, region=region, at=now, duration=timedelta(days=days))
                for days in (1, 7, 30)
            ),
        )
        for region in Region.objects.all()
    }
    assert len(set(quoted.values())) == len(quoted) == 3  # no two regions priced alike
    for on_demand, day, week, month in quoted.values():
        assert on_demand > day > week > month  # reserved is cheaper, and cheaper the longer the term
