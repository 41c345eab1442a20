"""A node whose agent stops answering is out of placement after one sweep: a failed answer is asked
again after a short delay inside the sweep, and only two failures in a row are a miss, so one slow or
dropped answer (or an agent restarting) does not take a node out."""

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from clusters.choices import HealthEventKind, NodeState
from clusters.models import HealthEvent, Node
from clusters.services import telemetry
from clusters.services.agent import AgentCall, AgentClient, Retry
from clusters.services.agent_tokens import encrypt_agent_token
from clusters.services.telemetry import fleet_poll
from tests.clusters.helpers import Fleet
from tests.clusters.recording_agent import answer_json, serving


@pytest.fixture(autouse=True)
def short_deadlines(settings) -> None:
    settings.POLL_TIMEOUT_MS = 300
    settings.POLL_RETRY_DELAY_MS = 200
    settings.POLL_RETRY_TIMEOUT_MS = 300


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


class Timeline:
    """A loopback agent whose /flaky/ path fails its first answer and whose /slow/ path answers after
    0.6 s; it notes when each request arrived and when each answer left, in one order."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.lock = threading.Lock()

    def note(self, event: str) -> None:
        with self.lock:
            self.events.append(event)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        timeline = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.strip("/").split("/")[0]
                timeline.note(f"{name} asked")
                if name == "slow":
                    time.sleep(0.6)
                failing = name == "flaky" and timeline.events.count("flaky asked") == 1
                timeline.note(f"{name} answered")  # before the bytes leave: the client may be done then
                answer_json(self, 500 if failing else 200, {"gpus": []})

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


@pytest.fixture
def timeline() -> Iterator[tuple[Timeline, str]]:
    found = Timeline()
    with serving(found.handler()) as base_url:
        yield found, base_url


def test_a_failed_answer_is_asked_again_without_waiting_for_the_slowest_node(timeline) -> None:
    found, base = timeline
    token = encrypt_agent_token("agent-secret")
    calls = [AgentCall(name, "GET", f"{base}/{name}/", token, "v1/gpus") for name in ("slow", "flaky")]
    retry = Retry(usable=lambda answer: answer.ok, delay_s=0.05, timeout_s=2.0)

    with AgentClient(concurrency=8) as client:
        answers = client.call(calls, timeout_s=2.0, retry=retry)

    assert (answers["flaky"].status, answers["flaky"].attempts) == (200, 2)
    assert (answers["slow"].status, answers["slow"].attempts) == (200, 1)
    # Asked again 50 ms after its own failure, and answered while the slow node was still answering.
    flaky_answers = [i for i, event in enumerate(found.events) if event == "flaky answered"]
    assert len(flaky_answers) == 2 and flaky_answers[1] < found.events.index("slow answered")


def test_the_nodes_that_missed_are_out_of_placement_before_the_readings_are_written(
    fleet_of: Callable[..., Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = fleet_of(2)
    down, up = fleet.nodes
    fleet.sim.set_fault(down.hostname, "refuse")
    states_when_written: list[str] = []
    write = telemetry._store_readings

    def store_readings(polls, now):
        states_when_written.append(state_of(down))
        return write(polls, now)

    monkeypatch.setattr(telemetry, "_store_readings", store_readings)
    report = fleet_poll()

    assert states_when_written == [NodeState.UNHEALTHY]
    assert report.nodes_made_unhealthy == [down.hostname] and report.gpus_read == 8
    assert state_of(up) == NodeState.AVAILABLE
