"""Billing test setup."""

import pytest


@pytest.fixture(autouse=True)
def celery_runs_tasks_inline(settings) -> None:
    """Tasks queued on commit (PDF rendering, Stripe push) run in the test instead of waiting in Redis.

    The Celery app reads its configuration from Django's settings on each access.
    """
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def march_invoices(acme, globex):
    """March 2026 closed: Acme has two leases in two regions, Globex one; returns {slug: invoice}."""
    from datetime import UTC, datetime, timedelta

    from billing.models import Invoice
    from billing.services.invoicing import month_close
    from tests.billing.factories import make_lease
    from tests.factories import RegionFactory

    march = datetime(2026, 3, 1, tzinfo=UTC)
    virginia = RegionFactory.create(code="us-va-1", name="Virginia 1", us_state="Virginia")
    make_lease(organization=acme, start=march, end=march + timedelta(hours=10), gpus=8, price="1.9900")
    make_lease(organization=acme, start=march, end=march + timedelta(hours=2), gpus=1, region=virginia)
    make_lease(organization=globex, start=march, end=march + timedelta(hours=3), gpus=2, price="2.4900")
    month_close(period_start=march, now=datetime(2026, 4, 1, 1, tzinfo=UTC))
    return {invoice.organization.slug: invoice for invoice in Invoice.objects.select_related("organization")}


@pytest.fixture(scope="session")
def stripe_server():
    """One fake Stripe on loopback for the session; localstripe's disk snapshots are turned off."""
    from localstripe import resources

    from tests.billing.stripe_server import FakeStripe

    resources.Store.dump_to_disk = lambda self: None  # its /tmp pickle is shared by every process
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture
def stripe(stripe_server, settings):
    """Stripe switched on and pointed at the fake, which starts each test empty."""
    stripe_server.reset()
    settings.STRIPE_ENABLED = True
    settings.STRIPE_SECRET_KEY = "sk_test_voltpark"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_voltpark"
    settings.STRIPE_API_BASE = stripe_server.url
    return stripe_server
