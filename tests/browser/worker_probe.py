"""A task only the harness's own test loads into the worker (`-I tests.browser.worker_probe`)."""

from celery import shared_task

from accounts.models import AuditEntry


@shared_task(name="tests.browser.worker_probe.probe")
def probe(marker: str) -> None:
    """Write an audit row, proving the worker reached the test database."""
    AuditEntry.objects.create(action="worker.probe", object_type="probe", object_id=marker)
