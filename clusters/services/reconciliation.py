"""Reconciliation: a lease a node reports installed that the platform does not hold live there is
revoked, on every poll, until the node stops reporting it.

Revokes are sent where a lease's live allocations are, so keys that went in on a node the lease
later left were never revoked: a scheduled lease whose PUT went in while its node failed (the start
sweep then holds it back) and that remediation re-placed elsewhere kept its account on the old
node for good, and every later lease on those GPUs overlapped it there (the soak of 2026-12-01,
docs/decisions.md). Any other lost revoke (an agent restarted or hanging when it was sent) is
caught the same way. Every agent answers a poll with the ids of the leases it has installed; the
platform compares them with the leases scheduled or active with a live allocation on that node,
read after the answer, and sends DELETE for the rest. A DELETE is idempotent, so two pollers
sending it, or one sent again after a lost answer, change nothing twice.
"""

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection

from clusters.services.agent import AgentCall, AgentClient

log = logging.getLogger(__name__)

# The leases among those reported that hold GPUs on a node now (or will, once they start).
LIVE_ON_NODES_SQL = """
SELECT DISTINCT l.public_id::text, a.node_id
FROM clusters_lease l JOIN clusters_allocation a ON a.lease_id = l.id
WHERE l.public_id = ANY(%s::uuid[]) AND a.is_live AND l.state IN ('scheduled', 'active')
"""


def leases_reconcile(*, installed: dict[int, Iterable[Any]], nodes: dict[int, dict[str, Any]]) -> list[str]:
    """Revoke, on each node, the leases it reports installed (`installed`: node id -> lease ids) that
    are not scheduled or active there; the `hostname lease` pairs it asked to revoke."""
    reported = {node_id: _lease_ids(ids) for node_id, ids in installed.items()}
    every_id = sorted({lease_id for ids in reported.values() for lease_id in ids})
    if not every_id:
        return []
    with connection.cursor() as cursor:
        cursor.execute(LIVE_ON_NODES_SQL, ["{" + ",".join(every_id) + "}"])
        live = {(lease_id, node_id) for lease_id, node_id in cursor.fetchall()}
    strays = [(node_id, lease_id) for node_id, ids in reported.items() for lease_id in ids]
    strays = [(node_id, lease_id) for node_id, lease_id in strays if (lease_id, node_id) not in live]
    if not strays:
        return []
    calls = [_revoke_call(nodes[node_id], lease_id) for node_id, lease_id in strays]
    with AgentClient(concurrency=settings.POLL_CONCURRENCY) as client:
        answers = client.call(calls, timeout_s=settings.POLL_TIMEOUT_MS / 1000)
    revoked = []
    for (node_id, lease_id), call in zip(strays, calls, strict=True):
        answer = answers[call.key]
        where = f"{nodes[node_id]['hostname']} {lease_id}"
        if answer.ok or answer.status == 404:
            log.warning("revoked lease %s left installed on %s", lease_id, nodes[node_id]["hostname"])
            revoked.append(where)
        else:
            log.warning("could not revoke stray lease %s (%s); the next poll asks again", where, answer.error)
    return revoked


def _lease_ids(ids: Iterable[Any]) -> set[str]:
    """The lease ids an agent reported, canonical; anything that is not a lease id is ignored."""
    canonical = set()
    for value in ids if isinstance(ids, list | tuple | set) else ():
        try:
            canonical.add(str(uuid.UUID(str(value))))
        except ValueError:
            continue
    return canonical


def _revoke_call(node: dict[str, Any], lease_id: str) -> AgentCall:
    key = (node["id"], lease_id)
    return AgentCall(key, "DELETE", node["agent_url"], node["agent_token_encrypted"], f"v1/leases/{lease_id}")
