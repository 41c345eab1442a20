"""Lease reads scoped to an organization (or for staff): lists, nodes, usage so far."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from accounts.models import Organization, SshKey
from clusters.choices import LeaseState
from clusters.models import Allocation, Lease
from core.db import get_by_public_id_or_404
from core.money import amount_for, gpu_hours
from nodeagent.protocol import account_for_lease


def leases_of(organization: Organization, *, state: str | None = None) -> QuerySet[Lease]:
    """The organization's leases, newest first, with what the API shows of them."""
    leases = Lease.objects.filter(organization=organization).select_related("region", "replaces")
    if state:
        leases = leases.filter(state=state)
    allocations = Allocation.objects.select_related("node", "gpu").order_by("node__hostname", "gpu__index")
    return leases.prefetch_related(
        Prefetch("allocations", queryset=allocations),
        Prefetch("ssh_keys", queryset=SshKey.objects.only("public_id")),
    ).order_by("-created_at", "-pk")


def lease_of_organization_or_404(organization: Organization, public_id: object) -> Lease:
    """One of the organization's leases; another organization's id (or a malformed one) is a 404."""
    return get_by_public_id_or_404(leases_of(organization), public_id)


def leases_for_staff(
    *, state: str = "", region: str = "", organization: str = "", kind: str = ""
) -> QuerySet[Lease]:
    """Every organization's leases, newest first, filtered by state, region code, organization slug, kind."""
    leases = Lease.objects.select_related("organization", "region", "booked_by")
    filters = {
        "state": state,
        "region__code": region,
        "organization__slug": organization,
        "kind": kind,
    }
    leases = leases.filter(**{column: value for column, value in filters.items() if value})
    return leases.order_by("-created_at", "-pk")


def hostnames_of(leases: Iterable[Lease]) -> dict[int, list[str]]:
    """The nodes each lease holds (or held), one query for a page of leases."""
    rows = (
        Allocation.objects.filter(lease_id__in=[lease.pk for lease in leases])
        .values_list("lease_id", "node__hostname")
        .distinct()
        .order_by("lease_id", "node__hostname")
    )
    hosts: dict[int, list[str]] = defaultdict(list)
    for lease_id, hostname in rows:
        hosts[lease_id].append(hostname)
    return hosts


PAST_LEASES_SHOWN = 50


@dataclass(frozen=True)
class LeaseGroups:
    """An organization's leases as the list page shows them."""

    upcoming: list[Lease]
    active: list[Lease]
    past: list[Lease]


def leases_grouped(organization: Organization, at: datetime | None = None) -> LeaseGroups:
    """Upcoming (scheduled), active, and the latest past leases, each with its `cost` (what it has
    cost until `at`, as billing measures it; a scheduled reserved lease: what it commits to); three
    queries, none per row."""
    rows = Lease.objects.filter(organization=organization).select_related("region", "booked_by")
    live = list(rows.filter(state__in=(LeaseState.SCHEDULED, LeaseState.ACTIVE)).order_by("start", "pk"))
    past = list(
        rows.exclude(state__in=(LeaseState.SCHEDULED, LeaseState.ACTIVE)).order_by("-start", "-pk")[
            :PAST_LEASES_SHOWN
        ]
    )
    costs = lease_costs_until([*live, *past], at)
    for lease in [*live, *past]:
        lease.cost = costs.get(lease.pk, Decimal("0.00"))  # type: ignore[attr-defined]
    return LeaseGroups(
        upcoming=[lease for lease in live if lease.state == LeaseState.SCHEDULED],
        active=[lease for lease in live if lease.state == LeaseState.ACTIVE],
        past=past,
    )


# USED_SQL for many leases at once; a scheduled reserved lease counts its whole window instead.
COSTS_SQL = """
SELECT lease.id, coalesce(sum(extract(epoch FROM
    CASE WHEN lease.state = 'scheduled' THEN upper(a.period) - lower(a.period)
    ELSE least(date_trunc('second', coalesce(upper(a.period), %(at)s)), %(at)s)
         - date_trunc('second', lower(a.period)) END)::bigint), 0)
FROM clusters_lease lease
JOIN clusters_allocation a ON a.lease_id = lease.id AND a.is_live
    AND (lease.state = 'scheduled' OR lower(a.period) < %(at)s)
WHERE lease.id = ANY(%(leases)s)
GROUP BY lease.id
"""


def lease_costs_until(leases: list[Lease], at: datetime | None = None) -> dict[int, Decimal]:
    """Each lease's cost until `at` (now), rounded once to the cent, by lease id: one query. A
    scheduled lease's is its whole booked window (a reserved lease's commitment; an on-demand one
    has no end, so nothing)."""
    at = (at or timezone.now()).replace(microsecond=0)
    if not leases:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(COSTS_SQL, {"leases": [lease.pk for lease in leases], "at": at})
        seconds = dict(cursor.fetchall())
    return {
        lease.pk: amount_for(Decimal(int(seconds.get(lease.pk) or 0)) * lease.price_per_gpu_hour)
        for lease in leases
    }


@dataclass(frozen=True)
class LeaseNode:
    """A node a lease holds GPUs on, and how to reach it."""

    hostname: str
    gpu_indices: list[int]
    ssh_command: str


def ssh_command(lease: Lease, hostname: str) -> str:
    """How the lease's people log in to one of its nodes: its own account, their keys."""
    return f"ssh {account_for_lease(str(lease.public_id))}@{hostname}"


def lease_nodes(lease: Lease) -> list[LeaseNode]:
    """The nodes of the lease's live allocations, each with its GPUs and its SSH command."""
    nodes: dict[str, list[int]] = {}
    rows = lease.allocations.filter(is_live=True).values_list("node__hostname", "gpu__index")
    for hostname, index in rows.order_by("node__hostname", "gpu__index"):
        nodes.setdefault(hostname, []).append(index)
    return [LeaseNode(host, indices, ssh_command(lease, host)) for host, indices in nodes.items()]


@dataclass(frozen=True)
class UsageSoFar:
    """What a lease has used until an instant: GPU-hours and their cost at the booked price."""

    at: datetime
    gpu_seconds: int
    gpu_hours: Decimal
    amount: Decimal


# Bounds truncated to the second and an open period clipped at `at`, as billing measures usage.
USED_SQL = """
SELECT coalesce(sum(extract(epoch FROM
    least(date_trunc('second', coalesce(upper(period), %(at)s)), %(at)s)
    - date_trunc('second', lower(period)))::bigint), 0)
FROM clusters_allocation
WHERE lease_id = %(lease)s AND is_live AND lower(period) < %(at)s
"""


def lease_usage_until(lease: Lease, at: datetime | None = None) -> UsageSoFar:
    """GPU-seconds of the lease's live allocations up to `at` (now), as billing measures them."""
    at = (at or timezone.now()).replace(microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(USED_SQL, {"lease": lease.pk, "at": at})
        seconds = int(cursor.fetchone()[0])
    amount = amount_for(Decimal(seconds) * lease.price_per_gpu_hour)
    return UsageSoFar(at=at, gpu_seconds=seconds, gpu_hours=gpu_hours(seconds), amount=amount)
