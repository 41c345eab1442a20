"""Billing test setup."""

import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:  # type: ignore[no-untyped-def]
    """Users made by factories hash a password; billing tests make many and never log in by password."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def celery_runs_tasks_inline():  # type: ignore[no-untyped-def]
    """Tasks queued on commit (PDF rendering, Stripe push) run in the test instead of waiting in Redis."""
    from voltpark.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def march_invoices(acme, globex):  # type: ignore[no-untyped-def]
    """March 2026 closed: Acme has two leases in two regions, Globex one; returns {slug: invoice}."""
    from datetime import UTC, datetime, timedelta

    from billing.models import Invoice
    from billing.services.invoicing import month_close
    from tests.billing.factories import make_lease
    from tests.factories import RegionFactory

    march = datetime(2026, 3, 1, tzinfo=UTC)
    virginia = RegionFactory(code="us-va-1", name="Virginia 1", us_state="Virginia")
    make_lease(organization=acme, start=march, end=march + timedelta(hours=10), gpus=8, price="1.9900")
    make_lease(organization=acme, start=march, end=march + timedelta(hours=2), gpus=1, region=virginia)
    make_lease(organization=globex, start=march, end=march + timedelta(hours=3), gpus=2, price="2.4900")
    month_close(period_start=march, now=datetime(2026, 4, 1, 1, tzinfo=UTC))
    return {invoice.organization.slug: invoice for invoice in Invoice.objects.select_related("organization")}
