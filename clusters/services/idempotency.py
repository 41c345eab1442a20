"""Idempotency keys are kept for IDEMPOTENCY_KEY_RETENTION_HOURS, then purged.

A client may repeat a request within that window and get the first answer; after it, the key is
free again and a request carrying it is new work (as Stripe's keys expire after 24 hours).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

PURGE_BATCH = 5000

# SKIP LOCKED: two purgers running at once delete different rows instead of waiting on each other.
PURGE_SQL = """
DELETE FROM clusters_idempotencykey
WHERE id IN (
    SELECT id FROM clusters_idempotencykey WHERE created_at < %s
    LIMIT %s FOR UPDATE SKIP LOCKED
)
"""


def idempotency_keys_purge(*, now: datetime | None = None) -> int:
    """Delete the keys older than their retention; the number deleted.

    Each batch commits alone, so no statement holds many row locks or runs long; a second run, or
    one running at the same time, finds nothing left to delete.
    """
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_RETENTION_HOURS)
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(PURGE_SQL, [cutoff, PURGE_BATCH])
            count = cursor.rowcount
        deleted += count
        if count < PURGE_BATCH:
            return deleted
