"""Reconciliation over real HTTP against the simulated agent: a node's leases that the platform does
not hold live there are revoked by the next poll, and only those."""

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Organization, User
from clusters.choices import LeaseState, NodeState
from clusters.models import Allocation, Lease, Node
from clusters.services.lifecycle import leases_enforce
from clusters.services.remediation import leases_remediate
from clusters.services.telemetry import fleet_poll
from nodeagent.protocol import account_for_lease
from tests.clusters.helpers import SSH_KEY, Fleet, gpus_of, lease_on


def on_node(fleet: Fleet, node: Node, lease: Lease) -> str | None:
    """The lease's state in the node's own records (active, revoked), or None if it never saw it."""
    record = fleet.lease_root / node.hostname / account_for_lease(str(lease.public_id)) / "lease.json"
    return json.loads(record.read_text())["state"] if record.exists() else None


def set_state(node: Node, state: str) -> None:
    """The node's state, written on a connection of its own and closed (callable from any thread)."""
    Node.objects.filter(pk=node.pk).update(state=state)
    connection.close()


def held_back_on_the_first_of_two(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> tuple[Fleet, Node, Node, Lease]:
    """Two nodes, a due lease on the first, and a start sweep that held it back with its keys in on
    the first node (start_held_back_by_a_failure)."""
    fleet = fleet_of(2)
    a, b = fleet.nodes
    lease = lease_on(gpus_of(a, [1]), organization=acme, booked_by=alice)
    start_held_back_by_a_failure(fleet, a)
    return fleet, a, b, lease


def start_held_back_by_a_failure(fleet: Fleet, node: Node) -> None:
    """A start sweep in which the node fails after its agent took the keys, before the sweep's answer
    is back: the starting statement holds the lease back, with its keys in on the node."""
    agent = fleet.sim.node(node.hostname)
    install = agent.install_lease

    def install_then_fail(*args: Any, **kwargs: Any) -> Any:
        result = install(*args, **kwargs)
        # Its own connection: the agent runs in a loop of its own.
        failing = threading.Thread(target=set_state, args=(node, NodeState.UNHEALTHY))
        failing.start()
        failing.join()
        return result

    agent.install_lease = install_then_fail
    try:
        assert leases_enforce().started == 0
    finally:
        agent.install_lease = install


@pytest.mark.django_db(transaction=True)
def test_keys_left_on_the_node_a_held_back_lease_was_moved_off_are_revoked_by_the_next_poll(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    fleet, a, b, lease = held_back_on_the_first_of_two(fleet_of, acme, alice)
    assert Lease.objects.get(pk=lease.pk).state == LeaseState.SCHEDULED
    assert on_node(fleet, a, lease) == "active"

    assert leases_remediate().replaced == [str(lease.public_id)]
    assert leases_enforce().started == 1
    assert set(Allocation.objects.filter(lease=lease, is_live=True).values_list("node", flat=True)) == {b.pk}
    Lease.objects.filter(pk=lease.pk).update(end=timezone.now())
    assert leases_enforce().ended == 1
    assert (on_node(fleet, b, lease), on_node(fleet, a, lease)) == ("revoked", "active")

    report = fleet_poll(node_ids=[a.pk, b.pk])

    assert report.strays_revoked == [f"{a.hostname} {lease.public_id}"]
    assert on_node(fleet, a, lease) == "revoked" and not fleet.keys_file(a, lease).exists()
    assert fleet_poll(node_ids=[a.pk, b.pk]).strays_revoked == []


def test_a_poll_revokes_what_the_platform_does_not_hold_live_on_the_node_and_nothing_else(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    fleet = fleet_of(2)
    a, b = fleet.nodes
    later = timezone.now() + timedelta(hours=2)
    running = lease_on(gpus_of(a, [0]), organization=acme, booked_by=alice, state=LeaseState.ACTIVE)
    starting = lease_on(gpus_of(a, [1]), organization=acme, booked_by=alice, start=later)
    moved = lease_on(gpus_of(b, [2]), organization=acme, booked_by=alice, start=later)
    cancelled = lease_on(gpus_of(a, [3]), organization=acme, booked_by=alice, state=LeaseState.CANCELLED)
    unknown = "0b7e6c1e-5a34-4c38-9d7e-3f1a2b4c5d6e"
    agent = fleet.sim.node(a.hostname)
    for lease_id in (*(str(x.public_id) for x in (running, starting, moved, cancelled)), unknown):
        agent.install_lease(lease_id, (0,), (SSH_KEY,))

    report = fleet_poll(node_ids=[a.pk, b.pk])

    expected = sorted(
        f"{a.hostname} {lease_id}" for lease_id in (moved.public_id, cancelled.public_id, unknown)
    )
    assert sorted(report.strays_revoked) == expected
    assert agent.installed_leases() == tuple(sorted((str(running.public_id), str(starting.public_id))))
    assert [on_node(fleet, a, x) for x in (running, starting, moved, cancelled)] == [
        "active",
        "active",
        "revoked",
        "revoked",
    ]


def test_a_stray_on_a_node_that_does_not_answer_the_revoke_is_revoked_by_a_later_poll(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, settings
) -> None:
    settings.LEASE_AGENT_TIMEOUT_MS = 300
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    gone = lease_on(gpus_of(node, [0]), organization=acme, booked_by=alice, state=LeaseState.ENDED)
    agent = fleet.sim.node(node.hostname)
    agent.install_lease(str(gone.public_id), (0,), (SSH_KEY,))
    revoke = agent.revoke_lease

    def hang(lease_id: str) -> Any:
        raise ConnectionError("the agent went away mid-revoke")

    agent.revoke_lease = hang
    assert fleet_poll(node_ids=[node.pk]).strays_revoked == []
    agent.revoke_lease = revoke

    assert fleet_poll(node_ids=[node.pk]).strays_revoked == [f"{node.hostname} {gone.public_id}"]
    assert on_node(fleet, node, gone) == "revoked"


@pytest.mark.django_db(transaction=True)
def test_a_lease_moved_off_a_node_and_later_back_onto_it_starts_there(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    fleet, a, b, lease = held_back_on_the_first_of_two(fleet_of, acme, alice)
    assert leases_remediate().replaced == [str(lease.public_id)]  # onto b, before it starts
    assert fleet_poll(node_ids=[a.pk]).strays_revoked == [f"{a.hostname} {lease.public_id}"]
    assert on_node(fleet, a, lease) == "revoked"
    # a is back in service and b fails before the start: the lease is placed back onto a.
    set_state(a, NodeState.AVAILABLE)
    set_state(b, NodeState.UNHEALTHY)
    assert leases_remediate().replaced == [str(lease.public_id)]

    assert leases_enforce().started == 1

    assert Lease.objects.get(pk=lease.pk).state == LeaseState.ACTIVE
    assert on_node(fleet, a, lease) == "active" and fleet.keys_file(a, lease).exists()
