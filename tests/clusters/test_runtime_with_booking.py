"""Run time and booking together: leases booked and released through booking's services, started,
ended and cleaned by the sweeper over real HTTP against the simulated agent, and placement seeing
what the run time found (unhealthy nodes, GPUs awaiting cleanup)."""

from collections.abc import Callable

import pytest

from accounts.models import AuditEntry
from clusters.choices import LeaseState, NodeState
from clusters.models import GPU, Lease
from clusters.services.booking import lease_release
from clusters.services.lifecycle import gpus_cleanup_check, leases_enforce
from clusters.services.refusals import NoCapacity
from clusters.services.telemetry import fleet_poll
from tests.clusters.helpers import SSH_KEY, Booking, Fleet, nodes_of


def started(booking: Booking, fleet: Fleet, gpus: int) -> Lease:
    """An on-demand lease of `gpus` on the fleet's only node, booked and started by a sweep."""
    lease = booking.on_demand(fleet.nodes[0], gpus)
    assert leases_enforce().started == 1
    assert fleet.keys_file(fleet.nodes[0], lease).read_text().startswith(SSH_KEY.rsplit(" ", 1)[0])
    return lease


def test_a_released_lease_is_ended_by_the_sweeper_and_its_gpus_can_be_booked_again(
    fleet_of: Callable[..., Fleet], booking: Booking
) -> None:
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    lease = started(booking, fleet, 8)
    with pytest.raises(NoCapacity):
        booking.on_demand(node, 1)

    released = lease_release(user=booking.user, lease=lease)
    assert released.state == LeaseState.ACTIVE and released.end is not None
    report = leases_enforce()

    lease.refresh_from_db()
    assert report.ended == 1 and lease.state == LeaseState.ENDED
    assert lease.end <= lease.ended_at
    assert not fleet.keys_file(node, lease).exists()
    assert {a.period.upper for a in lease.allocations.all()} == {lease.end}
    assert GPU.objects.filter(node=node, needs_cleanup=True).count() == 0
    assert AuditEntry.objects.filter(object_id=str(lease.public_id), action="lease.ended").count() == 1
    assert leases_enforce().ended == 0
    again = booking.on_demand(node, 8)
    assert nodes_of(again) == {node.hostname}
    assert leases_enforce().started == 1 and fleet.keys_file(node, again).exists()


def test_gpus_return_to_placement_only_once_the_agent_reports_them_clean(
    fleet_of: Callable[..., Fleet], booking: Booking, settings
) -> None:
    settings.LEASE_AGENT_TIMEOUT_MS = 300
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    lease = started(booking, fleet, 8)
    lease_release(user=booking.user, lease=lease)
    fleet.sim.set_fault(node.hostname, "refuse")

    assert leases_enforce().ended == 1
    assert Lease.objects.get(pk=lease.pk).state == LeaseState.ENDED
    assert GPU.objects.filter(node=node, needs_cleanup=True).count() == 8
    with pytest.raises(NoCapacity):
        booking.on_demand(node, 1)
    assert gpus_cleanup_check() == 0
    fleet.sim.clear_faults(node.hostname)
    assert gpus_cleanup_check() == 8

    assert not fleet.keys_file(node, lease).exists()
    assert GPU.objects.filter(node=node, needs_cleanup=True).count() == 0
    assert nodes_of(booking.on_demand(node, 8)) == {node.hostname}


def test_a_node_a_poll_turned_unhealthy_is_skipped_by_lease_book(
    fleet_of: Callable[..., Fleet], booking: Booking
) -> None:
    fleet = fleet_of(2)
    sick, healthy = fleet.nodes  # best fit would pick `sick` first: same free GPUs, lower hostname
    fleet.sim.set_fault(sick.hostname, "xid", code=79)

    report = fleet_poll()

    assert report.nodes_made_unhealthy == [sick.hostname]
    sick.refresh_from_db()
    assert sick.state == NodeState.UNHEALTHY
    assert nodes_of(booking.on_demand(sick, 8)) == {healthy.hostname}
    with pytest.raises(NoCapacity):
        booking.on_demand(sick, 1)
