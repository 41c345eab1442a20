"""The simulator's misbehaving agents, over HTTP: an answer that is not JSON, a slow fault limited to a
few answers, and an agent restarted in the middle of a lease."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.nodeagent.fakes import FleetServer

NODE = "tx1-c01-n002"
LEASE = "LSE-01HXRESTART-abc"


def set_fault(fs: FleetServer, **body: object) -> httpx.Response:
    return fs.client.post(fs.url(NODE, "v1/simulate/faults"), json=body)


def test_the_garbage_fault_answers_200_with_a_body_that_is_not_json(served_fleet: FleetServer) -> None:
    assert set_fault(served_fleet, fault="garbage").status_code == 200

    response = served_fleet.client.get(served_fleet.url(NODE, "v1/gpus"))

    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    faults = served_fleet.client.get(served_fleet.url(NODE, "v1/simulate/faults")).json()["faults"]
    assert faults["garbage"] is True
    served_fleet.client.delete(served_fleet.url(NODE, "v1/simulate/faults"), params={"fault": "garbage"})
    assert served_fleet.client.get(served_fleet.url(NODE, "v1/gpus")).json()["node"] == NODE


def test_a_slow_fault_for_one_answer_delays_only_that_answer(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="slow", seconds=0.5, answers=1)

    with pytest.raises(httpx.ReadTimeout):
        served_fleet.client.get(served_fleet.url(NODE, "v1/gpus"), timeout=0.2)
    started = time.monotonic()
    assert served_fleet.client.get(served_fleet.url(NODE, "v1/gpus")).status_code == 200

    assert time.monotonic() - started < 0.4
    assert set_fault(served_fleet, fault="slow", seconds=0.5, answers=0).status_code == 400


def utilization(fs: FleetServer) -> list[int]:
    return [gpu["utilization_pct"] for gpu in fs.client.get(fs.url(NODE, "v1/gpus")).json()["gpus"]]


def test_a_restarted_agent_answers_nothing_then_still_holds_the_lease(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    body = {"gpu_indices": [0, 1], "ssh_public_keys": [ssh_keys["ed25519"]]}
    assert served_fleet.client.put(served_fleet.url(NODE, f"v1/leases/{LEASE}"), json=body).status_code == 200
    assert [value >= 70 for value in utilization(served_fleet)][:3] == [True, True, False]

    set_fault(served_fleet, fault="restart", seconds=0.4)

    with pytest.raises(httpx.TransportError):
        served_fleet.client.get(served_fleet.url(NODE, "v1/gpus"))
    time.sleep(0.5)
    assert [value >= 70 for value in utilization(served_fleet)][:3] == [True, True, False]
    revoked = served_fleet.client.delete(served_fleet.url(NODE, f"v1/leases/{LEASE}")).json()
    assert revoked["processes_stopped"] == 2 and revoked["gpus_clean"] is True
