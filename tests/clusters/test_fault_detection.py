"""A node whose agent stops answering is out of placement after one sweep: a failed answer is asked
again after a short delay inside the sweep, and only two failures in a row are a miss, so one slow or
dropped answer (or an agent restarting) does not take a node out."""

import time
from collections.abc import Callable

import pytest

from clusters.choices import HealthEventKind, NodeState
from clusters.models import HealthEvent, Node
from clusters.services.telemetry import fleet_poll
from tests.clusters.helpers import Fleet


@pytest.fixture(autouse=True)
def short_deadlines(settings) -> None:
    settings.POLL_TIMEOUT_MS = 300
    settings.POLL_RETRY_DELAY_MS = 200


def state_of(node: Node) -> str:
    return Node.objects.get(pk=node.pk).state


def test_a_node_that_stops_answering_is_out_of_placement_after_one_sweep(
    fleet_of: Callable[..., Fleet],
) -> None:
    fleet = fleet_of(2)
    down, up = fleet.nodes
    fleet.sim.set_fault(down.hostname, "refuse")

    report = fleet_poll()

    assert report.nodes_made_unhealthy == [down.hostname] and report.retried == 1
    assert dict(report.errors) == {"connection": 1}
    assert (state_of(down), state_of(up)) == (NodeState.UNHEALTHY, NodeState.AVAILABLE)
    event = HealthEvent.objects.get()
    assert event.kind == HealthEventKind.UNREACHABLE and event.detail.startswith(
        "No usable answer for 1 poll"
    )


def test_one_slow_answer_is_asked_again_and_the_node_stays_in_service(fleet_of: Callable[..., Fleet]) -> None:
    fleet = fleet_of(2)
    blip = fleet.nodes[0]
    fleet.sim.set_fault(blip.hostname, "slow", seconds=1.0, answers=1)

    report = fleet_poll()

    assert (report.answered, report.retried, report.unreachable) == (2, 1, [])
    assert state_of(blip) == NodeState.AVAILABLE and HealthEvent.objects.count() == 0
    assert Node.objects.get(pk=blip.pk).unreachable_sweeps == 0


def test_an_agent_restarting_for_less_than_the_retry_delay_is_not_a_miss(
    fleet_of: Callable[..., Fleet],
) -> None:
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    fleet.sim.set_fault(node.hostname, "restart", seconds=0.1)

    report = fleet_poll()

    assert (report.answered, report.retried) == (1, 1)
    assert state_of(node) == NodeState.AVAILABLE


def test_an_agent_that_answers_garbage_is_out_of_placement(fleet_of: Callable[..., Fleet]) -> None:
    fleet = fleet_of(2)
    broken = fleet.nodes[0]
    fleet.sim.set_fault(broken.hostname, "garbage")

    report = fleet_poll()

    assert report.nodes_made_unhealthy == [broken.hostname] and dict(report.errors) == {"bad_answer": 1}
    event = HealthEvent.objects.get()
    assert event.kind == HealthEventKind.UNREACHABLE and "not JSON" in event.detail
    assert state_of(fleet.nodes[1]) == NodeState.AVAILABLE


def test_a_hanging_agent_costs_its_sweep_two_deadlines_and_the_delay_then_is_out(
    fleet_of: Callable[..., Fleet],
) -> None:
    fleet = fleet_of(3)
    hung = fleet.nodes[0]
    fleet.sim.set_fault(hung.hostname, "slow", seconds=30)

    started = time.monotonic()
    report = fleet_poll()
    elapsed = time.monotonic() - started

    assert elapsed < 0.3 + 0.2 + 0.3 + 1.0  # the deadlines and delay, plus the sweep's own work
    assert report.nodes_made_unhealthy == [hung.hostname] and dict(report.errors) == {"timeout": 1}
    assert "each asked twice (timed out)" in HealthEvent.objects.get().detail
