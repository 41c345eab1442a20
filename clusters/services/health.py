"""Node health: the rules applied to each sweep, health events, and draining nodes in and out."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import send_mail, send_mass_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditEntry, User
from accounts.services.audit import audit_entry, audit_record
from clusters.choices import GpuHealth, HealthEventKind, LeaseState, NodeState
from clusters.models import GPU, Allocation, HealthEvent, Lease, Node
from clusters.services.agent import parse_xid
from clusters.services.capacity import capacity_freed
from clusters.services.lifecycle import owner_emails
from core.refusals import Refused

if TYPE_CHECKING:
    from clusters.services.telemetry import NodePoll, SweepReport

Problem = tuple[str, int | None]  # (HealthEventKind, GPU id or None for the whole node)
ALL_KINDS = frozenset(HealthEventKind.values)
# States a failing node leaves for `unhealthy`; maintenance and offline are already out of placement.
FAILABLE_STATES = (NodeState.AVAILABLE, NodeState.DRAINING)
UNDRAINABLE_STATES = (NodeState.DRAINING, NodeState.UNHEALTHY, NodeState.MAINTENANCE)
GPU_HEALTH_FOR: dict[str, str] = {
    HealthEventKind.OVERHEAT: GpuHealth.DEGRADED,
    HealthEventKind.XID: GpuHealth.FAILED,
    HealthEventKind.ECC: GpuHealth.FAILED,
    HealthEventKind.GPU_MISSING: GpuHealth.FAILED,
}


class NodeStateError(Refused):
    """The node is not in a state this change applies to."""

    code = "node_state"


@dataclass
class NodeFailure:
    """What opening health events on one node did."""

    hostname: str
    problems: list[str]
    turned_unhealthy: bool
    leases_flagged: list[str] = field(default_factory=list)


def node_problems(
    poll: "NodePoll", missed_polls: int | None, unreachable_after: int | None = None
) -> tuple[dict[Problem, str], frozenset[str]]:
    """The node's failing rules now, and which kinds of event this poll can tell anything about; a
    node that did not answer fails after `unreachable_after` misses in a row (default
    HEALTH_UNREACHABLE_SWEEPS)."""
    if not poll.answered:
        if (missed_polls or 0) >= (unreachable_after or settings.HEALTH_UNREACHABLE_SWEEPS):
            polls = "1 poll" if missed_polls == 1 else f"{missed_polls} polls in a row"
            detail = f"No usable answer for {polls}, each asked twice ({poll.answer.error})."
            return {(HealthEventKind.UNREACHABLE, None): detail[:300]}, frozenset(
                {HealthEventKind.UNREACHABLE}
            )
        return {}, frozenset()
    if poll.degraded_error:
        detail = f"The agent cannot read its GPUs: {poll.degraded_error}"[:300]
        scope = frozenset({HealthEventKind.UNREACHABLE, HealthEventKind.GPU_MISSING})
        return {(HealthEventKind.GPU_MISSING, None): detail}, scope
    problems: dict[Problem, str] = {}
    for gpu in poll.gpus:
        for kind, detail in gpu_problems(gpu, poll.readings.get(gpu["id"]), poll.node["undrained_at"]):
            problems[(kind, gpu["id"])] = detail
    return problems, ALL_KINDS


def gpu_problems(
    gpu: dict[str, Any], reading: dict[str, Any] | None, undrained_at: datetime | None
) -> list[tuple[HealthEventKind, str]]:
    """The health rules a GPU's reading fails, with a sentence each."""
    index = gpu["index"]
    if reading is None:
        return [(HealthEventKind.GPU_MISSING, f"GPU {index} is missing from the agent's answer.")]
    if reading.get("lost"):
        return [
            (HealthEventKind.GPU_MISSING, f"GPU {index} is lost (fell off the bus or NVML cannot see it).")
        ]
    found = []
    xid = _critical_xid(reading, undrained_at)
    if xid:
        found.append((HealthEventKind.XID, f"GPU {index} reported XID {xid}."))
    ecc = reading.get("ecc_uncorrectable_volatile")
    if isinstance(ecc, int) and ecc > settings.HEALTH_ECC_UNCORRECTABLE_MAX:
        found.append((HealthEventKind.ECC, f"GPU {index} has {ecc} uncorrectable ECC errors."))
    temperature = reading.get("temperature_c")
    if isinstance(temperature, int | float) and temperature > settings.HEALTH_MAX_TEMPERATURE_C:
        limit = settings.HEALTH_MAX_TEMPERATURE_C
        found.append((HealthEventKind.OVERHEAT, f"GPU {index} is at {temperature} °C (limit {limit} °C)."))
    return found


def _critical_xid(reading: dict[str, Any], undrained_at: datetime | None) -> int | None:
    """A critical XID code reported since the node was last returned to service, else None.

    The agent keeps reporting the last XID; one that happened before an admin undrained the node
    was dealt with.
    """
    code, at = parse_xid(reading)
    if code not in settings.HEALTH_XID_CRITICAL_CODES:
        return None
    if undrained_at is not None and (at is None or at <= undrained_at):
        return None
    return code


def health_evaluate(
    *,
    polls: list["NodePoll"],
    unreachable_counts: dict[int, int],
    now: datetime,
    report: "SweepReport",
    unreachable_after: int | None = None,
) -> None:
    """Open events for new problems, end those that cleared, fail nodes, and tell people (added to
    `report`: a sweep may evaluate its nodes in parts)."""
    findings = {
        poll.node["id"]: node_problems(poll, unreachable_counts.get(poll.node["id"]), unreachable_after)
        for poll in polls
    }
    open_events = HealthEvent.objects.filter(node_id__in=list(findings), ended_at__isnull=True)
    already: dict[int, set[Problem]] = {}
    cleared: list[int] = []
    for event in open_events.values("id", "node_id", "kind", "gpu_id"):
        problems, scope = findings[event["node_id"]]
        key = (event["kind"], event["gpu_id"])
        already.setdefault(event["node_id"], set()).add(key)
        if event["kind"] in scope and key not in problems:
            cleared.append(event["id"])
    report.events_ended += HealthEvent.objects.filter(pk__in=cleared, ended_at__isnull=True).update(
        ended_at=now
    )
    new_problems = {}
    for node_id, (problems, _scope) in findings.items():
        new = {key: detail for key, detail in problems.items() if key not in already.get(node_id, set())}
        if new:
            new_problems[node_id] = new
    failures = nodes_health_fail(problems_by_node=new_problems, now=now)
    report.events_opened += [f"{f.hostname}: {p}" for f in failures for p in f.problems]
    report.nodes_made_unhealthy += [f.hostname for f in failures if f.turned_unhealthy]
    _notify_staff(failures)


# Nodes failed per transaction: a sweep that finds a whole region missing fails it in a few
# transactions of this many, not one each (one each took 29 s for 1,000 nodes; docs/decisions.md).
FAIL_BATCH = 200


def node_health_fail(*, node_id: int, problems: dict[Problem, str], now: datetime) -> NodeFailure:
    """Record new problems on a node: events opened, node out of placement, its leases flagged."""
    return nodes_health_fail(problems_by_node={node_id: problems}, now=now)[0]


def nodes_health_fail(*, problems_by_node: dict[int, dict[Problem, str]], now: datetime) -> list[NodeFailure]:
    """`node_health_fail` for many nodes, FAIL_BATCH of them to a transaction, in node id order."""
    node_ids = sorted(problems_by_node)
    failures = []
    for i in range(0, len(node_ids), FAIL_BATCH):
        batch = {node_id: problems_by_node[node_id] for node_id in node_ids[i : i + FAIL_BATCH]}
        failures += _nodes_fail(batch, now)
    return failures


@transaction.atomic
def _nodes_fail(problems_by_node: dict[int, dict[Problem, str]], now: datetime) -> list[NodeFailure]:
    node_ids = sorted(problems_by_node)
    # The leases first, then the nodes: the order extending a lease and starting one take them in
    # (lease, then its nodes). Node first deadlocked against an extend holding the lease.
    leases = _leases_on_locked(node_ids, now)
    nodes = list(Node.objects.select_for_update().filter(pk__in=node_ids).order_by("pk"))
    # A lease placed on a node before its lock was taken is flagged too (it holds no lock of ours yet).
    leases += _leases_on_locked(node_ids, now, besides=frozenset(lease.pk for lease in leases))
    on_node = _leases_by_node(node_ids, leases, now)
    newly_flagged = {lease.pk: lease for lease in leases if not lease.health_flagged}
    Lease.objects.filter(pk__in=list(newly_flagged)).update(health_flagged=True)

    events, gpu_health = [], {}
    for node in nodes:
        for (kind, gpu_id), detail in problems_by_node[node.pk].items():
            events.append(HealthEvent(node=node, gpu_id=gpu_id, kind=kind, detail=detail, started_at=now))
            if gpu_id is not None:
                gpu_health[gpu_id] = GPU_HEALTH_FOR[kind]
    HealthEvent.objects.bulk_create(events)
    link = HealthEvent.leases.through
    link.objects.bulk_create(
        [link(healthevent_id=e.pk, lease_id=lease_id) for e in events for lease_id in on_node[e.node_id]]
    )
    for health in set(gpu_health.values()):
        GPU.objects.filter(pk__in=[gpu for gpu, h in gpu_health.items() if h == health]).update(health=health)

    failures: list[NodeFailure] = []
    notices: list[tuple[list[Lease], list[str]]] = []
    told: set[int] = set()
    turned = [node for node in nodes if node.state in FAILABLE_STATES]
    turned_ids = {node.pk for node in turned}
    for node in nodes:
        problems = list(problems_by_node[node.pk].values())
        if node.pk in turned_ids:
            node.state, node.state_changed_at = NodeState.UNHEALTHY, now
            node.state_reason = "; ".join(problems)[:200]
        # A lease on two failing nodes is told of the first.
        flagged = [newly_flagged[pk] for pk in on_node[node.pk] if pk in newly_flagged and pk not in told]
        told.update(lease.pk for lease in flagged)
        notices.append((flagged, problems))
        failures.append(
            NodeFailure(
                node.hostname, problems, node.pk in turned_ids, [str(lease.public_id) for lease in flagged]
            )
        )
    Node.objects.bulk_update(turned, ["state", "state_reason", "state_changed_at"])
    AuditEntry.objects.bulk_create(
        [
            audit_entry(
                actor=None, action="node.health_failed", obj=node, after={"problems": failure.problems}
            )
            for node, failure in zip(nodes, failures, strict=True)
        ]
    )
    transaction.on_commit(lambda: _notify_owners(notices))
    return failures


def _leases_on_locked(
    node_ids: list[int], now: datetime, besides: frozenset[int] = frozenset()
) -> list[Lease]:
    """The live leases holding GPUs of the nodes at `now`, locked in id order (as a batch of
    sweepers locks them), skipping `besides`."""
    on_nodes = Allocation.objects.filter(node_id__in=node_ids, is_live=True, period__contains=now).values(
        "lease_id"
    )
    live = Lease.objects.filter(pk__in=on_nodes, state__in=(LeaseState.ACTIVE, LeaseState.SCHEDULED))
    return list(live.exclude(pk__in=besides).select_for_update(no_key=True).order_by("pk"))


def _leases_by_node(node_ids: list[int], leases: list[Lease], now: datetime) -> dict[int, list[int]]:
    """Which of the locked `leases` hold GPUs of each node at `now`, in lease id order."""
    pairs = Allocation.objects.filter(
        node_id__in=node_ids, lease_id__in=[lease.pk for lease in leases], is_live=True, period__contains=now
    ).values_list("node_id", "lease_id")
    found: dict[int, set[int]] = {node_id: set() for node_id in node_ids}
    for node_id, lease_id in pairs:
        found[node_id].add(lease_id)
    return {node_id: sorted(ids) for node_id, ids in found.items()}


def _notify_owners(notices: list[tuple[list[Lease], list[str]]]) -> None:
    """For each failing node (the leases it newly flagged, its problems), one email per organization
    whose leases run on it; the owners read in one query."""
    by_node = []
    for leases, problems in notices:
        by_org: dict[int, list[Lease]] = {}
        for lease in leases:
            by_org.setdefault(lease.organization_id, []).append(lease)
        if by_org:
            by_node.append((by_org, problems))
    if not by_node:
        return
    owners = owner_emails(org_id for by_org, _ in by_node for org_id in by_org)
    messages = []
    for by_org, problems in by_node:
        for org_id, org_leases in by_org.items():
            if not owners.get(org_id):
                continue
            ids = ", ".join(str(lease.public_id) for lease in org_leases)
            body = (
                f"A node running your lease(s) {ids} failed a health check:\n- "
                + "\n- ".join(problems)
                + "\n\nWe are looking into it; time lost is credited on your invoice."
            )
            messages.append(("Voltpark: a GPU node of your lease has a problem", body, None, owners[org_id]))
    send_mass_mail(messages, fail_silently=True)


def _notify_staff(failures: list[NodeFailure]) -> None:
    """One email to staff per sweep that found new problems."""
    if not failures or not settings.STAFF_NOTIFY_EMAILS:
        return
    lines = [f"{f.hostname}: {p}" for f in failures for p in f.problems]
    subject = f"Voltpark: {len(failures)} node(s) failed health checks"
    send_mail(subject, "\n".join(lines), None, settings.STAFF_NOTIFY_EMAILS, fail_silently=True)


@transaction.atomic
def node_drain(*, node: Node, actor: User, reason: str) -> Node:
    """Take an available node out of placement; its running leases continue."""
    now = timezone.now()
    changed = Node.objects.filter(pk=node.pk, state=NodeState.AVAILABLE).update(
        state=NodeState.DRAINING, state_reason=reason[:200], state_changed_at=now
    )
    if changed != 1:
        raise NodeStateError(
            f"Node {node.hostname} is {node.state}; only an available node can be drained.", state=node.state
        )
    before = {"state": node.state}
    node.refresh_from_db()
    audit_record(actor=actor, action="node.drained", obj=node, before=before, after=_node_audit(node))
    return node


@transaction.atomic
def node_undrain(*, node: Node, actor: User, reason: str) -> Node:
    """Return a drained or unhealthy node to placement; its open health events end now."""
    now = timezone.now()
    changed = Node.objects.filter(pk=node.pk, state__in=UNDRAINABLE_STATES).update(
        state=NodeState.AVAILABLE,
        state_reason=reason[:200],
        state_changed_at=now,
        undrained_at=now,
        unreachable_sweeps=0,
    )
    if changed != 1:
        raise NodeStateError(
            f"Node {node.hostname} is {node.state}; it is not out of service.", state=node.state
        )
    before = {"state": node.state}
    HealthEvent.objects.filter(node=node, ended_at__isnull=True).update(ended_at=now)
    GPU.objects.filter(node=node).exclude(health=GpuHealth.HEALTHY).update(health=GpuHealth.HEALTHY)
    node.refresh_from_db()
    audit_record(actor=actor, action="node.undrained", obj=node, before=before, after=_node_audit(node))
    capacity_freed()
    return node


def _node_audit(node: Node) -> dict[str, str]:
    return {"state": node.state, "reason": node.state_reason}
