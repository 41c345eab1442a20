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
