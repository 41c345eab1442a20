"""A lease's health as its owner sees it: flagged or not, the open health events on its nodes, and
the SLA credit its time on failing nodes has earned so far."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from clusters.models import HealthEvent, Lease
from core.money import amount_for, gpu_hours


@dataclass(frozen=True)
class OpenEvent:
    """A health event still open on one of the lease's nodes."""

    public_id: str
    hostname: str
    gpu_index: int | None
    kind: str
    kind_label: str
    detail: str
    started_at: datetime


@dataclass(frozen=True)
class LeaseHealth:
    """What the lease's owner may know of its nodes' health, until `at`."""

    flagged: bool
    open_events: list[OpenEvent] = field(default_factory=list)
    sla_gpu_seconds: int = 0
    sla_credit: Decimal = Decimal("0.00")

    @property
    def sla_gpu_hours(self) -> Decimal:
        return gpu_hours(self.sla_gpu_seconds)


# GPU-seconds each lease's live allocations spent on a node while a health event was open there,
# until now: per allocation the union of its node's events (overlapping events never count twice)
# intersected with the allocation's period, bounds truncated to the second as billing measures
# them (billing/selectors/sla.py credits the same time when the month closes).
SLA_SO_FAR_SQL = """
WITH lost AS (
    SELECT a.lease_id,
           unnest(
               range_agg(tstzrange(date_trunc('second', e.started_at),
                                   date_trunc('second', least(coalesce(e.ended_at, %(at)s), %(at)s)), '[)'))
               * tstzmultirange(tstzrange(
                   date_trunc('second', lower(a.period)),
                   date_trunc('second', least(coalesce(upper(a.period), %(at)s), %(at)s)), '[)'))
           ) AS span
    FROM clusters_allocation a
    JOIN clusters_healthevent e ON e.node_id = a.node_id
    WHERE a.lease_id = ANY(%(ids)s::bigint[]) AND a.is_live AND lower(a.period) < %(at)s
      AND e.started_at < %(at)s AND e.started_at < coalesce(upper(a.period), 'infinity')
      AND (e.ended_at IS NULL OR e.ended_at > lower(a.period))
    GROUP BY a.id, a.lease_id
)
SELECT lease_id, sum(extract(epoch FROM upper(span) - lower(span)))::bigint FROM lost GROUP BY lease_id
"""


def leases_health(leases: Sequence[Lease], at: datetime | None = None) -> dict[int, LeaseHealth]:
    """Each lease's health (by id), in two queries for any number of leases."""
    at = (at or timezone.now()).replace(microsecond=0)
    ids = [lease.pk for lease in leases]
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(SLA_SO_FAR_SQL, {"ids": ids, "at": at})
        lost = {lease_id: int(seconds) for lease_id, seconds in cursor.fetchall()}
    events = _open_events(ids)
    return {
        lease.pk: LeaseHealth(
            flagged=lease.health_flagged,
            open_events=events.get(lease.pk, []),
            sla_gpu_seconds=lost.get(lease.pk, 0),
            sla_credit=amount_for(lost.get(lease.pk, 0) * Decimal(lease.price_per_gpu_hour)),
        )
        for lease in leases
    }


def lease_health(lease: Lease, at: datetime | None = None) -> LeaseHealth:
    """One lease's health."""
    return leases_health([lease], at)[lease.pk]


def _open_events(lease_ids: list[int]) -> dict[int, list[OpenEvent]]:
    """The open events on the nodes of each lease's live allocations, oldest first."""
    rows = (
        HealthEvent.objects.filter(
            ended_at__isnull=True,
            node__allocations__lease_id__in=lease_ids,
            node__allocations__is_live=True,
        )
        .values_list(
            "node__allocations__lease_id",
            "public_id",
            "node__hostname",
            "gpu__index",
            "kind",
            "detail",
            "started_at",
        )
        .distinct()
        .order_by("node__allocations__lease_id", "started_at", "public_id")
    )
    labels = dict(HealthEvent._meta.get_field("kind").flatchoices)
    events: dict[int, list[OpenEvent]] = {}
    for lease_id, public_id, hostname, index, kind, detail, started_at in rows:
        event = OpenEvent(
            str(public_id), hostname, index, kind, str(labels.get(kind, kind)), detail, started_at
        )
        events.setdefault(lease_id, []).append(event)
    return events
