"""Lease enforcement: due leases start and end on time, leases that cannot start fail, owners are warned.

Each batch of leases is claimed with SELECT ... FOR NO KEY UPDATE SKIP LOCKED and changed with a
conditional UPDATE ... RETURNING inside the same transaction, so two sweepers, a retried task or a
duplicated beat never act on a lease twice; a worker killed mid-batch rolls back and the agent calls
it made are repeated by the next sweep, which is safe because they are idempotent. NO KEY locks let
the poller keep inserting rows that reference the leases meanwhile.
"""

import json
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Membership
from clusters.choices import GPUS_PER_NODE, GpuHealth, LeaseNoticeKind, LeaseState, NodeState
from clusters.models import GPU, Allocation, Lease, Node, Region
from clusters.services.agent import AgentAnswer, AgentCall, AgentClient
from clusters.services.capacity import capacity_freed
from clusters.services.charging import charging
from core.request_id import current_request_id

LeaseNodeKey = tuple[int, int]  # (lease id, node id)


@dataclass
class EnforceReport:
    """What one enforcement sweep did."""

    started: int = 0
    failed: int = 0
    waiting: int = 0
    ended: int = 0
    keys_sent: int = 0
    notices: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class _Placement:
    """The nodes and GPUs a batch of leases holds, and how to reach each node's agent."""

    gpus: dict[LeaseNodeKey, list[tuple[int, int]]]  # (lease, node) -> [(gpu id, gpu index)]
    nodes: dict[int, dict[str, Any]]
    sudo: set[int] = field(default_factory=set)  # leases whose organization gives whole nodes sudo
    # (lease, node) -> the first id of its allocations there: a lease placed again gets new rows, so
    # the agent tells a later placement (installable after a revoke) from a late retry (not).
    placements: dict[LeaseNodeKey, int] = field(default_factory=dict)

    def calls(self, leases: Iterable[Lease], method: str, body: Any = None) -> list[AgentCall]:
        by_id = {lease.pk: lease for lease in leases}
        calls = []
        for key in self.gpus:
            lease_id, node_id = key
            if lease_id not in by_id:
                continue
            lease, node = by_id[lease_id], self.nodes[node_id]
            payload = body(self, lease, key) if body else None
            path = f"v1/leases/{lease.public_id}"
            calls.append(
                AgentCall(key, method, node["agent_url"], node["agent_token_encrypted"], path, payload)
            )
        return calls

    def install_body(self, lease: Lease, key: LeaseNodeKey) -> dict[str, Any]:
        """What a node installs for a lease: its GPUs there, the lease's keys, sudo on a whole node."""
        indices = sorted(index for _, index in self.gpus[key])
        body: dict[str, Any] = {
            "gpu_indices": indices,
            "ssh_public_keys": list(lease.ssh_public_keys),
            # Never on a shared node: sudo there would open the other tenants' GPUs and files.
            "sudo": lease.pk in self.sudo and len(indices) == GPUS_PER_NODE,
        }
        peers = self.peers(lease.pk)
        if len(peers) > 1:
            body["peers"] = peers
        if key in self.placements:
            body["placement"] = self.placements[key]
        return body

    def peers(self, lease_id: int) -> list[dict[str, Any]]:
        """Every node of the lease, as each of them writes its hostfile and /etc/hosts lines."""
        return self._peers.get(lease_id, [])

    @cached_property
    def _peers(self) -> dict[int, list[dict[str, Any]]]:
        # Once per batch: built per call, a batch of leases would walk every allocation per node.
        peers: dict[int, list[dict[str, Any]]] = {}
        for (lease_id, node_id), gpus in self.gpus.items():
            node = self.nodes[node_id]
            peer = {"hostname": node["hostname"], "address": node["private_address"], "slots": len(gpus)}
            peers.setdefault(lease_id, []).append(peer)
        # The agent writes /etc/hosts from the addresses: a lease with a node whose cluster address is
        # not recorded gets no peers (rather than a hostfile missing a node); it starts all the same.
        return {
            lease_id: sorted(nodes, key=lambda peer: peer["hostname"])
            for lease_id, nodes in peers.items()
            if all(peer["address"] for peer in nodes)
        }


def leases_enforce(*, now: datetime | None = None, region: str | None = None) -> EnforceReport:
    """One sweep: start what is due, end what is due, warn owners of reserved leases about to end.

    With `region` (a code), only that region's leases: each region's workers sweep their own.
    """
    now = now or timezone.now()
    report = EnforceReport()
    region_id = None
    if region is not None:
        region_id = Region.objects.filter(code=region).values_list("pk", flat=True).first()
        if region_id is None:
            return report
    with agent_client() as client:
        leases_start_due(now=now, report=report, client=client, region_id=region_id)
        report.keys_sent = leases_keys_sync(client=client, region_id=region_id)
        report.ended = leases_end_due(now=now, client=client, region_id=region_id)
    report.notices = leases_notify_ending(now=now, region_id=region_id)
    return report


def agent_client() -> AgentClient:
    """One connection pool to the agents for a whole sweep, batch after batch."""
    return AgentClient(concurrency=settings.POLL_CONCURRENCY)


def _using(client: AgentClient | None) -> AbstractContextManager[AgentClient]:
    """The caller's client, left open, or a new one closed when the block ends."""
    return nullcontext(client) if client is not None else agent_client()


def _agent_calls(client: AgentClient, calls: list[AgentCall]) -> dict[Any, AgentAnswer]:
    return client.call(calls, timeout_s=settings.LEASE_AGENT_TIMEOUT_MS / 1000)


def _placement(lease_ids: list[int], *, live_only: bool = True) -> _Placement:
    allocations = Allocation.objects.filter(lease_id__in=lease_ids)
    if live_only:
        allocations = allocations.filter(is_live=True)
    gpus: dict[LeaseNodeKey, list[tuple[int, int]]] = {}
    placements: dict[LeaseNodeKey, int] = {}
    for allocation_id, lease_id, node_id, gpu_id, index in allocations.values_list(
        "id", "lease_id", "node_id", "gpu_id", "gpu__index"
    ):
        gpus.setdefault((lease_id, node_id), []).append((gpu_id, index))
        key = (lease_id, node_id)
        placements[key] = min(allocation_id, placements.get(key, allocation_id))
    node_ids = {node_id for _, node_id in gpus}
    fields = ("id", "hostname", "agent_url", "agent_token_encrypted", "private_address")
    nodes = {node["id"]: node for node in Node.objects.filter(pk__in=node_ids).values(*fields)}
    sudo = Lease.objects.filter(pk__in=lease_ids, organization__whole_node_sudo=True).values_list(
        "pk", flat=True
    )
    return _Placement(gpus, nodes, set(sudo), placements)


def _claim(
    state: str, due: dict[str, Any], exclude: set[int], region_id: int | None, *, startable_only: bool = False
) -> list[Lease]:
    """Lock up to LEASE_SWEEP_BATCH due leases (of one region, or all) that no other sweeper holds.

    `startable_only`: not a lease holding GPUs on a node out of service or a GPU that is not
    healthy; it never starts there (clusters/services/remediation.py moves it or fails it).
    """
    if region_id is not None:
        due = {**due, "region_id": region_id}
    query = Lease.objects.select_for_update(skip_locked=True, no_key=True).filter(state=state, **due)
    if startable_only:
        query = query.exclude(Exists(_out_of_service_allocations()))
    return list(query.exclude(pk__in=exclude).order_by("pk")[: settings.LEASE_SWEEP_BATCH])


def _out_of_service_allocations() -> Any:
    return Allocation.objects.filter(lease_id=OuterRef("pk"), is_live=True).filter(
        ~Q(node__state=NodeState.AVAILABLE) | ~Q(gpu__health=GpuHealth.HEALTHY)
    )


TRANSITION_SQL = """
WITH moved AS (
    UPDATE clusters_lease SET state = %(target)s, {assignments}
    WHERE id = ANY(%(ids)s::bigint[]) AND state = %(source)s {guard}
    RETURNING id, organization_id, public_id
), audited AS (
    INSERT INTO accounts_auditentry
        (at, organization_id, action, object_type, object_id, before, after, request_id)
    SELECT %(at)s, organization_id, %(action)s, 'Lease', public_id::text, %(before)s::jsonb, %(after)s::jsonb,
        %(request_id)s
    FROM moved
)
SELECT id FROM moved
"""


# A lease never starts on a node out of service or a GPU that is not healthy (what `_claim` leaves
# out): read again by the starting statement itself, so a node that fails while the sweep waits for
# the agents, before this commits, holds the lease back too.
ON_HEALTHY_NODES = """AND NOT EXISTS (
        SELECT 1 FROM clusters_allocation a JOIN clusters_node n ON n.id = a.node_id
        JOIN clusters_gpu g ON g.id = a.gpu_id
        WHERE a.lease_id = clusters_lease.id AND a.is_live
            AND (n.state <> 'available' OR g.health <> 'healthy'))"""


# FOR KEY SHARE: what node_health_fail's FOR UPDATE waits for, and nothing else does (the poll's
# bulk UPDATEs of a node's counters take FOR NO KEY UPDATE, which it lets through).
NODES_HELD_SQL = "SELECT id FROM clusters_node WHERE id = ANY(%s::bigint[]) FOR KEY SHARE SKIP LOCKED"


def _nodes_held(leases: list[Lease], placement: _Placement) -> list[Lease]:
    """The leases whose nodes this transaction now holds against a health failure, until it commits.

    The starting statement's guard (ON_HEALTHY_NODES) reads the nodes' state as of its own snapshot,
    so a failure committing after that snapshot and before this transaction's commit went unseen:
    a lease started on a node whose failure was already recorded (twice in the soak of 2026-12-01).
    With the nodes locked first, a failure either committed before the guard's statement, which then
    sees it, or waits for this commit. A node being failed right now is skipped, not waited for (that
    failure waits for the leases this sweep holds, so waiting would deadlock): its leases wait for
    the next sweep, which finds the node failed.
    """
    lease_ids = {lease.pk for lease in leases}
    node_ids = sorted({node_id for (lease_id, node_id) in placement.gpus if lease_id in lease_ids})
    if not node_ids:
        return leases
    with connection.cursor() as cursor:
        cursor.execute(NODES_HELD_SQL, [node_ids])
        held = {row[0] for row in cursor.fetchall()}
    blocked = {lease_id for (lease_id, node_id) in placement.gpus if node_id not in held}
    return [lease for lease in leases if lease.pk not in blocked]


def _transition(
    leases: list[Lease], source: str, target: str, *, guard: str = "", **columns: Any
) -> list[Lease]:
    """Move leases still in `source` to `target` (and meeting `guard`); the leases that changed, each
    audited once.

    One statement: the conditional UPDATE and the audit rows of exactly the rows it changed (what
    `audit_record` writes, without building 500 model instances a batch).
    """
    if not leases:
        return []
    reason = columns.get("state_reason", "")
    after = {"state": target, "reason": reason} if reason else {"state": target}
    params = {
        **{f"col_{column}": value for column, value in columns.items()},
        "target": target,
        "source": source,
        "ids": [lease.pk for lease in leases],
        "at": timezone.now(),
        "action": f"lease.{target}",
        "before": json.dumps({"state": source}),
        "after": json.dumps(after),
        "request_id": current_request_id() or "",
    }
    assignments = ", ".join(f"{column} = %(col_{column})s" for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(TRANSITION_SQL.format(assignments=assignments, guard=guard), params)
        changed = {row[0] for row in cursor.fetchall()}
    return [lease for lease in leases if lease.pk in changed]


# --- Starting


def leases_start_due(
    *, now: datetime, report: EnforceReport, client: AgentClient | None = None, region_id: int | None = None
) -> None:
    """Start every scheduled lease whose start has come; fail those past LEASE_START_TIMEOUT_S."""
    seen: set[int] = set()
    with _using(client) as agents:
        while _start_batch(now, seen, report, agents, region_id):
            pass


@transaction.atomic
def _start_batch(
    now: datetime, seen: set[int], report: EnforceReport, client: AgentClient, region_id: int | None
) -> bool:
    leases = _claim(LeaseState.SCHEDULED, {"start__lte": now}, seen, region_id, startable_only=True)
    if not leases:
        return False
    seen.update(lease.pk for lease in leases)
    placement = _placement([lease.pk for lease in leases])
    answers = _agent_calls(client, placement.calls(leases, "PUT", _Placement.install_body))
    waiting_on: dict[int, list[str]] = {}
    for (lease_id, node_id), answer in answers.items():
        if not answer.ok:
            hostname = placement.nodes[node_id]["hostname"]
            waiting_on.setdefault(lease_id, []).append(f"{hostname} ({answer.error})")
    ready = _nodes_held([lease for lease in leases if lease.pk not in waiting_on], placement)
    # started_at is when the keys are in, not when the sweep began: what the owner sees, and what
    # the lateness measurement (bench/fleet.py) reads.
    started_at = timezone.now()
    started = _transition(
        ready, LeaseState.SCHEDULED, LeaseState.ACTIVE, guard=ON_HEALTHY_NODES, started_at=started_at
    )
    _bill_from_late_start(started, started_at)
    report.started += len(started)
    deadline = now - timedelta(seconds=settings.LEASE_START_TIMEOUT_S)
    stuck = [lease for lease in leases if lease.pk in waiting_on]
    overdue = [lease for lease in stuck if lease.start <= deadline or (lease.end and lease.end <= now)]
    report.failed += len(_fail(overdue, waiting_on, placement, now, client))
    for lease in stuck:
        if lease not in overdue:
            reason = ("Waiting for node agents: " + "; ".join(waiting_on[lease.pk]))[:200]
            Lease.objects.filter(pk=lease.pk, state=LeaseState.SCHEDULED).update(state_reason=reason)
    report.waiting += len(stuck) - len(overdue)
    report.problems += [f"{lease.public_id}: {'; '.join(waiting_on[lease.pk])}" for lease in stuck]
    return True


LATE_START_SQL = """
UPDATE clusters_allocation
SET period = tstzrange(LEAST(%(at)s, COALESCE(upper(period), 'infinity')), upper(period), '[)')
WHERE lease_id = ANY(%(ids)s::bigint[]) AND is_live AND lower(period) < %(late_after)s
"""


def _bill_from_late_start(leases: list[Lease], started_at: datetime) -> None:
    """A lease whose keys went in late is billed from then: its periods start at `started_at`.

    Usage is derived from allocation periods, so moving their lower bound is the whole change;
    lateness within LEASE_LATE_START_GRACE_S (a normal sweep) keeps the booked window.
    """
    if not leases:
        return
    late_after = started_at - timedelta(seconds=settings.LEASE_LATE_START_GRACE_S)
    params: dict[str, Any] = {
        "at": started_at,
        "ids": [lease.pk for lease in leases],
        "late_after": late_after,
    }
    with connection.cursor() as cursor:
        cursor.execute(LATE_START_SQL, params)


def _fail(
    leases: list[Lease],
    waiting_on: dict[int, list[str]],
    placement: _Placement,
    now: datetime,
    client: AgentClient,
) -> list[Lease]:
    """Fail leases that could not start: nothing billed, keys revoked wherever they went in."""
    if not leases:
        return []
    failed = []
    for lease in leases:
        reason = ("Could not start: " + "; ".join(waiting_on[lease.pk]))[:200]
        lease.state_reason = reason
        failed += _transition(
            [lease],
            LeaseState.SCHEDULED,
            LeaseState.FAILED,
            ended_at=now,
            state_reason=reason,
            keys_pending=False,
        )
    Allocation.objects.filter(lease__in=failed).update(is_live=False)
    for lease in failed:
        charging().lease_failed(lease=lease)
    _revoke(failed, placement, client)
    transaction.on_commit(lambda: _email_owners(failed, _failed_message))
    capacity_freed()
    return failed


# --- Sending changed keys to running leases' nodes


def leases_keys_sync(*, client: AgentClient | None = None, region_id: int | None = None) -> int:
    """Send every active lease whose keys changed its whole key set again; how many went everywhere.

    A lease some node did not take stays pending, for the next sweep.
    """
    seen: set[int] = set()
    sent = 0
    with _using(client) as agents:
        while (batch := _keys_batch(seen, agents, region_id)) is not None:
            sent += batch
    return sent


@transaction.atomic
def _keys_batch(seen: set[int], client: AgentClient, region_id: int | None) -> int | None:
    leases = _claim(LeaseState.ACTIVE, {"keys_pending": True}, seen, region_id)
    if not leases:
        return None
    seen.update(lease.pk for lease in leases)
    placement = _placement([lease.pk for lease in leases])
    answers = _agent_calls(client, placement.calls(leases, "PUT", _Placement.install_body))
    missed = {lease_id for (lease_id, _), answer in answers.items() if not answer.ok}
    done = [lease.pk for lease in leases if lease.pk not in missed]
    # The leases are locked by this transaction: a key withdrawn meanwhile waits, then marks it again.
    return Lease.objects.filter(pk__in=done).update(keys_pending=False)


# --- Ending


def leases_end_due(*, now: datetime, client: AgentClient | None = None, region_id: int | None = None) -> int:
    """End every active lease whose end has come; returns how many this sweeper ended."""
    ended = 0
    with _using(client) as agents:
        while count := _end_batch(now, agents, region_id):
            ended += count
    return ended


@transaction.atomic
def _end_batch(now: datetime, client: AgentClient, region_id: int | None) -> int:
    leases = _claim(LeaseState.ACTIVE, {"end__lte": now}, set(), region_id)
    if not leases:
        return 0
    _revoke(leases, _placement([lease.pk for lease in leases]), client)
    ended = _transition(
        leases, LeaseState.ACTIVE, LeaseState.ENDED, ended_at=timezone.now(), keys_pending=False
    )
    if ended:
        capacity_freed()
    return len(ended)


def _revoke(leases: list[Lease], placement: _Placement, client: AgentClient) -> None:
    """Ask every node of the leases to revoke them; GPUs not reported clean need cleaning."""
    answers = _agent_calls(client, placement.calls(leases, "DELETE"))
    unclean = [
        gpu_id for key, answer in answers.items() if not _clean(answer) for gpu_id, _ in placement.gpus[key]
    ]
    if unclean:
        GPU.objects.filter(pk__in=unclean).update(needs_cleanup=True)


def _clean(answer: AgentAnswer) -> bool:
    """Revoked and clean; an agent that never saw the lease has nothing of it to clean."""
    return answer.status == 404 or (answer.ok and bool(answer.body.get("gpus_clean")))  # type: ignore[union-attr]


def gpus_cleanup_check() -> int:
    """Ask again about GPUs waiting for cleanup; those now reported clean return to placement."""
    pending = (
        Allocation.objects.filter(
            gpu__needs_cleanup=True, lease__state__in=(LeaseState.ENDED, LeaseState.FAILED)
        )
        .order_by("gpu_id", "-lease__ended_at")
        .distinct("gpu_id")
        .values_list("lease_id", flat=True)
    )
    leases = list(Lease.objects.filter(pk__in=set(pending)))
    placement = _placement([lease.pk for lease in leases], live_only=False)
    with agent_client() as client:
        answers = _agent_calls(client, placement.calls(leases, "DELETE"))
    clean = [gpu_id for key, answer in answers.items() if _clean(answer) for gpu_id, _ in placement.gpus[key]]
    returned = GPU.objects.filter(pk__in=clean, needs_cleanup=True).update(needs_cleanup=False)
    if returned:
        capacity_freed()
    return returned


# --- Warning owners before a reserved lease ends


def leases_notify_ending(*, now: datetime, region_id: int | None = None) -> int:
    """Email owners 60 and 10 minutes before a lease with an end (reserved, or on-demand "until")
    ends, each notice once per lease; a released lease's end is now, and it is past them."""
    sent = 0
    lower = 0
    leases = Lease.objects.all() if region_id is None else Lease.objects.filter(region_id=region_id)
    for minutes in sorted(settings.LEASE_ENDING_NOTICE_MINUTES):
        due = leases.filter(
            end__isnull=False,
            state=LeaseState.ACTIVE,
            end__gt=now + timedelta(minutes=lower),
            end__lte=now + timedelta(minutes=minutes),
        ).exclude(notices__kind=f"ending_{minutes}")
        sent += _notify(list(due.values_list("pk", flat=True)), LeaseNoticeKind(f"ending_{minutes}"), now)
        lower = minutes
    return sent


@transaction.atomic
def _notify(lease_ids: list[int], kind: LeaseNoticeKind, now: datetime) -> int:
    """Record the notice; only the sweeper whose insert won sends the email."""
    if not lease_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO clusters_leasenotice (lease_id, kind, sent_at)"
            " SELECT id, %s, %s FROM unnest(%s::bigint[]) AS id"
            " ON CONFLICT (lease_id, kind) DO NOTHING RETURNING lease_id",
            [kind.value, now, lease_ids],
        )
        won = [row[0] for row in cursor.fetchall()]
    leases = list(Lease.objects.filter(pk__in=won).select_related("region"))
    transaction.on_commit(lambda: _email_owners(leases, lambda lease: _ending_message(lease, kind)))
    return len(won)


def _ending_message(lease: Lease, kind: LeaseNoticeKind) -> tuple[str, str]:
    end = f"{lease.end:%Y-%m-%d %H:%M} UTC"
    return (
        f"Voltpark: your lease {kind.label.lower()}",
        f"Your {lease.get_kind_display().lower()} lease {lease.public_id} "
        f"({lease.gpus} GPUs in {lease.region}) ends at {end}.\n"
        "Its SSH access is revoked then; save your work, or extend the lease if the GPUs are free.",
    )


def _failed_message(lease: Lease) -> tuple[str, str]:
    return (
        "Voltpark: your lease could not start",
        f"Your lease {lease.public_id} could not start: {lease.state_reason or 'its nodes did not answer'}.\n"
        "It is marked failed: nothing is billed for it, and what was paid for it is refunded.",
    )


def owner_emails(organization_ids: Iterable[int]) -> dict[int, list[str]]:
    """The owners' email addresses of each organization, in one query."""
    owners: dict[int, list[str]] = {}
    memberships = Membership.objects.filter(organization_id__in=set(organization_ids), role=Role.OWNER)
    for org_id, email in memberships.values_list("organization_id", "user__email"):
        owners.setdefault(org_id, []).append(email)
    return owners


def _email_owners(leases: list[Lease], message: Any) -> None:
    """One email per lease to its organization's owners."""
    owners = owner_emails(lease.organization_id for lease in leases)
    messages = []
    for lease in leases:
        if owners.get(lease.organization_id):
            subject, body = message(lease)
            messages.append((subject, body, None, owners[lease.organization_id]))
    send_mass_mail(messages, fail_silently=True)
