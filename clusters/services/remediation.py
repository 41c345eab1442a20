"""Remediation: leases on nodes that failed or were drained are moved, replaced or refunded.

Each lease sweep (lifecycle.leases_enforce) runs `leases_remediate` before it starts anything:

- A scheduled lease holding GPUs on a node out of service (or on a GPU that is not healthy) is
  re-placed on other GPUs for the same window: same region, size and pool, whole nodes of one
  cluster above 8 GPUs (placement's own functions, clusters/sql/booking.sql). The lease keeps its
  id, price and what was paid; only its allocations change. If nothing fits, it fails: nothing is
  charged (billing refunds it), and its owners are emailed with the nearest offerings.
- A running lease on a node that failed (unhealthy or offline; a drained node's leases run on) gets
  a replacement: booked at once if its owner asked for that (`replace_automatically`), else
  offered (email, and the lease page's button, `lease_replacement_book`). Either happens once per
  lease (a `LeaseNotice` row, inserted ON CONFLICT DO NOTHING). The SLA credit for the time on the
  failing node is billing's, as for any lease.

Every step is a conditional change of a lease locked FOR NO KEY UPDATE SKIP LOCKED, so two
sweepers never move one lease twice, and a lease the start sweep holds is left to the next sweep
(the start sweep itself never starts a lease on a node out of service: lifecycle._claim_startable).
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mass_mail
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services.audit import audit_record
from clusters.choices import GPUS_PER_NODE, LeaseKind, LeaseNoticeKind, LeaseState, NodeState
from clusters.models import Allocation, Lease, Region
from clusters.selectors.capacity import Window
from clusters.selectors.offerings import Offering, alternatives_for, ceil_to_step
from clusters.services.booking import LeaseOptions, lease_book, lost_race, snapshot
from clusters.services.capacity import capacity_freed
from clusters.services.charging import charging
from clusters.services.lifecycle import owner_emails
from clusters.services.refusals import InvalidState
from core.refusals import Refused

# Nodes whose running leases are given a replacement; a draining node's leases run on.
FAILED_NODE_STATES = (NodeState.UNHEALTHY, NodeState.OFFLINE)


@dataclass
class RemediationReport:
    """What one remediation sweep did."""

    replaced: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    replacements_booked: list[str] = field(default_factory=list)
    replacements_offered: list[str] = field(default_factory=list)


# Leases of one region (or all) in `state` with a live allocation on a node out of service or a
# GPU that is not healthy: for scheduled leases any node not available, for running ones a failed
# node whose allocation holds the GPU now. Few nodes are out of service at once, so this reads
# their allocations only.
AFFECTED_SQL = """
SELECT DISTINCT a.lease_id
FROM clusters_allocation a
JOIN clusters_node n ON n.id = a.node_id
JOIN clusters_gpu g ON g.id = a.gpu_id
JOIN clusters_lease l ON l.id = a.lease_id
WHERE a.is_live AND l.state = %(state)s
  AND (%(region)s::bigint IS NULL OR l.region_id = %(region)s::bigint)
  AND (%(ids)s::bigint[] IS NULL OR a.lease_id = ANY(%(ids)s::bigint[]))
  AND (n.state = ANY(%(node_states)s::text[]) OR g.health <> 'healthy')
  AND (%(state)s = 'scheduled' OR a.period @> %(now)s::timestamptz)
ORDER BY a.lease_id
"""


def affected_leases(
    *, state: str, now: datetime, region_id: int | None = None, lease_ids: list[int] | None = None
) -> list[int]:
    """Ids of the leases in `state` (of a region, or among `lease_ids`) that hold GPUs on a node
    out of service (see AFFECTED_SQL)."""
    if state == LeaseState.SCHEDULED:
        node_states = [s for s in NodeState.values if s != NodeState.AVAILABLE]
    else:
        node_states = list(FAILED_NODE_STATES)
    params = {"state": state, "region": region_id, "ids": lease_ids, "node_states": node_states, "now": now}
    with connection.cursor() as cursor:
        cursor.execute(AFFECTED_SQL, params)
        return [row[0] for row in cursor.fetchall()]


def leases_remediate(*, now: datetime | None = None, region: str | None = None) -> RemediationReport:
    """Re-place or fail the scheduled leases on nodes out of service; replace the running ones.

    With `region` (a code), only that region's leases, as its lease sweep does.
    """
    now = now or timezone.now()
    report = RemediationReport()
    region_id = None
    if region is not None:
        region_id = Region.objects.filter(code=region).values_list("pk", flat=True).first()
        if region_id is None:
            return report
    for lease_id in affected_leases(state=LeaseState.SCHEDULED, now=now, region_id=region_id):
        outcome = lease_re_place(lease_id=lease_id)
        if outcome is not None:
            (report.replaced if outcome.state == LeaseState.SCHEDULED else report.failed).append(
                str(outcome.public_id)
            )
    for lease_id in affected_leases(state=LeaseState.ACTIVE, now=now, region_id=region_id):
        replacement = lease_replacement_offer(lease_id=lease_id, now=now)
        if isinstance(replacement, Lease):
            report.replacements_booked.append(str(replacement.public_id))
        elif replacement:
            report.replacements_offered.append(str(lease_id))
    return report


# --- Scheduled leases: re-placed before their start, or failed and refunded


def _lock_if(lease_id: int, state: str) -> Lease | None:
    """The lease, locked, if it is still in `state` and no other sweeper holds it."""
    leases = Lease.objects.select_for_update(skip_locked=True, no_key=True, of=("self",))
    return leases.select_related("region").filter(pk=lease_id, state=state).first()


@transaction.atomic
def lease_re_place(*, lease_id: int) -> Lease | None:
    """Move a scheduled lease off a node out of service onto other GPUs for the same window, or fail
    it (refunded, owners told, alternatives offered) when nothing fits. None: nothing to do (moved
    already, started, or held by another sweeper)."""
    lease = _lock_if(lease_id, LeaseState.SCHEDULED)
    if lease is None or not _still_affected(lease):
        return None
    old_nodes = _hostnames(lease)
    before = {**snapshot(lease), "nodes": old_nodes}
    pool = _pool_of(lease)
    try:
        with transaction.atomic():
            placed = _place_again(lease, pool)
            if placed is None:
                raise _NothingFits
    except _NothingFits:
        return _fail(lease, before)
    except (IntegrityError, OperationalError) as error:
        if not lost_race(error):
            raise
        return None  # another booking took the GPUs meanwhile: the next sweep tries again
    new_nodes = _hostnames(lease)
    after = {**snapshot(lease), "nodes": new_nodes}
    audit_record(
        actor=None,
        action="lease.re_placed",
        obj=lease,
        organization=lease.organization,
        before=before,
        after=after,
    )
    transaction.on_commit(lambda: _email(lease, _re_placed_message(lease, old_nodes, new_nodes)))
    capacity_freed()
    return lease


def _still_affected(lease: Lease) -> bool:
    """Whether the lease still holds GPUs on a node out of service (re-checked under its lock)."""
    return bool(affected_leases(state=lease.state, now=timezone.now(), lease_ids=[lease.pk]))


class _NothingFits(Exception):
    """No other GPUs are free for the lease's window: roll its new placement back."""


def _pool_of(lease: Lease) -> str:
    return str(
        Allocation.objects.filter(lease=lease, is_live=True).values_list("node__pool", flat=True).first()
    )


PLACE_AGAIN_SQL = {
    True: "SELECT clusters_place_on_one_node(%s, %s, %s, %s, %s, %s::text[], %s)",
    False: "SELECT clusters_place_on_whole_nodes(%s, %s, %s, %s, %s, %s::text[], %s)",
}


def _place_again(lease: Lease, pool: str) -> list[Any] | None:
    """The lease's allocations given up and written again by placement, in its pool; None if
    nothing fits (the caller rolls back to keep the old ones)."""
    Allocation.objects.filter(lease=lease, is_live=True).update(is_live=False)
    one_node = lease.gpus <= GPUS_PER_NODE
    size = lease.gpus if one_node else lease.gpus // GPUS_PER_NODE
    soon = Window(lease.start, lease.end).overlaps_soon()
    params: list[Any] = [lease.pk, lease.region_id, lease.start, lease.end, size, [pool], soon]
    with connection.cursor() as cursor:
        cursor.execute(PLACE_AGAIN_SQL[one_node], params)
        answer = cursor.fetchone()[0]
    return None if answer is None else json.loads(answer)


def _hostnames(lease: Lease) -> list[str]:
    rows = Allocation.objects.filter(lease=lease, is_live=True).values_list("node__hostname", flat=True)
    return sorted(set(rows))


def _fail(lease: Lease, before: dict[str, Any]) -> Lease:
    """Nothing fits its window: the lease fails before its start and nothing is charged for it."""
    reason = "Its node failed before the start and no other GPUs are free for its window."
    changed = Lease.objects.filter(pk=lease.pk, state=LeaseState.SCHEDULED).update(
        state=LeaseState.FAILED, state_reason=reason, ended_at=timezone.now()
    )
    if changed != 1:
        return lease
    lease.state, lease.state_reason = LeaseState.FAILED, reason
    Allocation.objects.filter(lease=lease).update(is_live=False)
    charging().lease_failed(lease=lease)
    audit_record(
        actor=None,
        action="lease.failed",
        obj=lease,
        organization=lease.organization,
        before=before,
        after=snapshot(lease),
    )
    window = Window(ceil_to_step(max(lease.start, timezone.now())), None)
    if lease.end is not None:
        window = Window(window.start, window.start + (lease.end - lease.start))
    offerings = alternatives_for(organization=lease.organization, gpus=lease.gpus, window=window).offerings
    transaction.on_commit(lambda: _email(lease, _failed_message(lease, offerings)))
    capacity_freed()
    return lease


# --- Running leases: a replacement booked at once or offered


def replacement_window(lease: Lease, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The replacement's (start, end): on-demand from now, or the rest of a reserved window from
    the next minute, at least BOOKING_MIN_DURATION long."""
    if lease.kind == LeaseKind.ON_DEMAND and lease.end is None:
        return None, None
    start = ceil_to_step(now)
    assert lease.end is not None
    return start, max(lease.end, start + settings.BOOKING_MIN_DURATION)


@transaction.atomic
def lease_replacement_offer(*, lease_id: int, now: datetime) -> Lease | bool | None:
    """Once per running lease on a failed node: book its replacement if its owner asked for that,
    else offer one by email. The replacement booked, True when offered, None when done before."""
    lease = _lock_if(lease_id, LeaseState.ACTIVE)
    if lease is None or not _first_notice(lease, now):
        return None
    if lease.replace_automatically:
        try:
            replacement = _book_replacement(lease, user=lease.booked_by, now=now)
        except (Refused, ValidationError) as refusal:
            why = refusal.detail if isinstance(refusal, Refused) else " ".join(refusal.messages)
            transaction.on_commit(lambda: _email(lease, _offer_message(lease, refused=why)))
            return True
        transaction.on_commit(lambda: _email(lease, _booked_message(lease, replacement)))
        return replacement
    transaction.on_commit(lambda: _email(lease, _offer_message(lease)))
    return True


def _first_notice(lease: Lease, now: datetime) -> bool:
    """Record the replacement notice; False if one was recorded before (by this or another sweeper)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO clusters_leasenotice (lease_id, kind, sent_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (lease_id, kind) DO NOTHING RETURNING lease_id",
            [lease.pk, LeaseNoticeKind.REPLACEMENT.value, now],
        )
        return cursor.fetchone() is not None


def _book_replacement(lease: Lease, *, user: User, now: datetime) -> Lease:
    start, end = replacement_window(lease, now)
    return lease_book(
        user=user,
        organization=lease.organization,
        region=lease.region,
        gpus=lease.gpus,
        kind=lease.kind if lease.end is None else LeaseKind.RESERVED,
        start=start,
        end=end,
        ssh_keys=list(lease.ssh_keys.all()),
        options=LeaseOptions(replace_automatically=lease.replace_automatically, replaces=lease),
    )


def may_be_replaced(lease: Lease) -> bool:
    """Whether the lease runs on a failed node and has no live replacement yet (the page's button)."""
    if lease.state != LeaseState.ACTIVE or not _still_affected(lease):
        return False
    return not lease.replacements.filter(state__in=(LeaseState.SCHEDULED, LeaseState.ACTIVE)).exists()


def lease_replacement_book(*, user: User, lease: Lease) -> Lease:
    """Book the replacement offered for a running lease on a failed node (its owner's choice)."""
    if not may_be_replaced(lease):
        raise InvalidState("Only a running lease on a failed node, not yet replaced, can be replaced.")
    return _book_replacement(lease, user=user, now=timezone.now())


# --- Telling the owners


def _email(lease: Lease, message: tuple[str, str]) -> None:
    """To the organization's owners, with a link to the lease's page."""
    owners = owner_emails([lease.organization_id]).get(lease.organization_id)
    link = f"{settings.SITE_URL.rstrip('/')}/leases/{lease.public_id}/"
    if owners:
        body = f"{message[1]}\n\nThe lease's page: {link}\n"
        send_mass_mail([(message[0], body, None, owners)], fail_silently=True)


def _window_words(lease: Lease) -> str:
    if lease.end is None:
        return f"from {lease.start:%Y-%m-%d %H:%M} UTC, until released"
    return f"{lease.start:%Y-%m-%d %H:%M} to {lease.end:%Y-%m-%d %H:%M} UTC"


def _re_placed_message(lease: Lease, old: list[str], new: list[str]) -> tuple[str, str]:
    return (
        "Voltpark: your lease moved to healthy GPUs before its start",
        f"A node of your lease {lease.public_id} ({lease.gpus} GPUs in {lease.region}, "
        f"{_window_words(lease)}) "
        f"failed or was taken out of service before the lease started.\n"
        f"It now runs on {', '.join(new)} instead of {', '.join(old)}: the same window, size and price. "
        "Nothing else changes.",
    )


def _failed_message(lease: Lease, offerings: list[Offering]) -> tuple[str, str]:
    lines = [
        f"- {o.region.code}: {o.start:%Y-%m-%d %H:%M} to {o.end:%Y-%m-%d %H:%M} UTC, ${o.total_price}"
        for o in offerings
    ]
    alternatives = (
        "\n".join(lines) if lines else "- none in the next days; queue a request to be booked when GPUs free"
    )
    return (
        "Voltpark: your lease could not be moved off a failed node",
        f"A node of your lease {lease.public_id} ({lease.gpus} GPUs in {lease.region}, "
        f"{_window_words(lease)}) "
        "failed before the lease started, and no other GPUs are free for its window.\n"
        "The lease is cancelled as failed: nothing is charged for it, and what was paid is refunded.\n"
        f"Windows of the same size and length you can book now:\n{alternatives}",
    )


def _offer_message(lease: Lease, refused: str = "") -> tuple[str, str]:
    why = f"We tried to book its replacement at once, as you asked, but: {refused}\n" if refused else ""
    return (
        "Voltpark: a node of your running lease failed; a replacement is offered",
        f"A node of your lease {lease.public_id} ({lease.gpus} GPUs in {lease.region}) "
        "failed while it runs.\n"
        f"{why}You can book a replacement of the same size for the rest of its window from the lease's page. "
        "The time on the failed node is credited on your invoice (the page shows the credit so far).",
    )


def _booked_message(lease: Lease, replacement: Lease) -> tuple[str, str]:
    return (
        "Voltpark: a node of your running lease failed; its replacement is booked",
        f"A node of your lease {lease.public_id} ({lease.gpus} GPUs in {lease.region}) "
        "failed while it runs.\n"
        f"As you asked, a replacement is booked: lease {replacement.public_id}, "
        f"{_window_words(replacement)}. "
        "Release the old lease when you have moved your work; the time on the failed node is credited "
        "on your invoice.",
    )
