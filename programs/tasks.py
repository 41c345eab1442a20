"""Celery tasks of the programs: thin wrappers over the services, safe to run twice."""

from celery import shared_task

from programs.services.quota_requests import quota_requests_expire as quota_requests_expire_service


@shared_task
def quota_requests_expire() -> int:
    """Give back the quotas whose approval expired (each once, whichever worker gets it)."""
    return quota_requests_expire_service()
