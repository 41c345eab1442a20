"""Simulator faults switched over HTTP and in-process, seen by a poller over HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from nodeagent.backends.simulated import SimulatedNode
from nodeagent.simulator import start_simulated_node_in_thread
from tests.nodeagent.fakes import TOKEN, FleetServer

NODE = "tx1-c01-n002"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def set_fault(fs: FleetServer, **body: object) -> httpx.Response:
    """POST a fault for the test node."""
    return fs.client.post(fs.url(NODE, "v1/simulate/faults"), json=body)


def gpus(fs: FleetServer, hostname: str = NODE) -> list[dict]:
    """The GPU list a poller reads from a node."""
    return fs.client.get(fs.url(hostname, "v1/gpus")).json()["gpus"]


def test_the_xid_fault_shows_as_last_xid(served_fleet: FleetServer) -> None:
    assert set_fault(served_fleet, fault="xid", gpu_index=3, code=79).status_code == 200
    readings = gpus(served_fleet)
    assert readings[3]["last_xid"]["code"] == 79
    assert readings[3]["last_xid"]["at"].endswith("Z")
    assert [g["last_xid"] for g in readings if g["index"] != 3] == [None] * 7


def test_the_xid_code_defaults_to_79(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="xid", gpu_index=0)
    assert gpus(served_fleet)[0]["last_xid"]["code"] == 79


def test_the_ecc_fault_shows_uncorrectable_errors(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="ecc", gpu_index=2, count=3)
    assert [g["ecc_uncorrectable_volatile"] for g in gpus(served_fleet)] == [0, 0, 3, 0, 0, 0, 0, 0]


def test_the_overheat_fault_raises_the_temperature(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="overheat", gpu_index=5, temperature_c=95)
    assert gpus(served_fleet)[5]["temperature_c"] == 95


def test_a_lost_gpu_has_null_readings_and_degrades_health(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="gpu_lost", gpu_index=4)
    lost = gpus(served_fleet)[4]
    assert lost["lost"] is True and lost["utilization_pct"] is None and lost["power_draw_w"] is None
    assert httpx.get(served_fleet.url(NODE, "v1/health")).json()["status"] == "degraded"


def test_the_nvml_error_fault_answers_200_degraded_with_no_gpus(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="nvml_error", message="NVML Shared Library Not Found")
    response = served_fleet.client.get(served_fleet.url(NODE, "v1/gpus"))
    body = response.json()
    assert response.status_code == 200
    assert (body["degraded"], body["error"], body["gpus"]) == (True, "NVML Shared Library Not Found", [])


def test_faults_stay_on_their_node(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="ecc", count=9)
    assert {g["ecc_uncorrectable_volatile"] for g in gpus(served_fleet, "tx1-c01-n001")} == {0}


def test_deleting_faults_clears_them(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="gpu_lost", gpu_index=1)
    set_fault(served_fleet, fault="ecc", gpu_index=1, count=2)
    response = served_fleet.client.delete(served_fleet.url(NODE, "v1/simulate/faults"))
    assert response.json()["faults"]["gpu_lost"] == []
    assert not gpus(served_fleet)[1]["lost"]
    assert gpus(served_fleet)[1]["ecc_uncorrectable_volatile"] == 0


def test_deleting_one_kind_of_fault_keeps_the_rest(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="gpu_lost", gpu_index=1)
    set_fault(served_fleet, fault="overheat", gpu_index=2)
    served_fleet.client.delete(served_fleet.url(NODE, "v1/simulate/faults"), params={"fault": "gpu_lost"})
    faults = served_fleet.client.get(served_fleet.url(NODE, "v1/simulate/faults")).json()["faults"]
    assert faults["gpu_lost"] == [] and faults["overheat"] == {"2": 95}


def test_the_slow_fault_delays_the_answer(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="slow", seconds=0.4)
    started = time.monotonic()
    assert served_fleet.client.get(served_fleet.url(NODE, "v1/gpus")).status_code == 200
    assert time.monotonic() - started >= 0.4
    with pytest.raises(httpx.ReadTimeout):
        served_fleet.client.get(served_fleet.url(NODE, "v1/gpus"), timeout=0.1)


def test_a_slow_node_does_not_slow_the_others(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="slow", seconds=2)
    with pytest.raises(httpx.ReadTimeout):  # the slow node is slow...
        served_fleet.client.get(served_fleet.url(NODE, "v1/gpus"), timeout=0.5)
    started = time.monotonic()  # ...while another answers at once, even with that request pending
    response = served_fleet.client.get(served_fleet.url("tx1-c01-n001", "v1/gpus"))
    assert response.status_code == 200 and response.json()["node"] == "tx1-c01-n001"
    assert time.monotonic() - started < 1.0


def test_a_refusing_node_drops_the_connection_unanswered(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="refuse")
    with pytest.raises(httpx.TransportError):
        httpx.get(served_fleet.url(NODE, "v1/health"))
    with pytest.raises(httpx.TransportError):
        served_fleet.client.get(served_fleet.url(NODE, "v1/gpus"))
    assert served_fleet.client.get(served_fleet.url("tx1-c01-n001", "v1/gpus")).status_code == 200


def test_a_refusing_node_answers_again_once_cleared(served_fleet: FleetServer) -> None:
    set_fault(served_fleet, fault="refuse")
    served_fleet.client.delete(served_fleet.url(NODE, "v1/simulate/faults"), params={"fault": "refuse"})
    assert served_fleet.client.get(served_fleet.url(NODE, "v1/gpus")).status_code == 200


def test_a_lone_refusing_node_closes_its_port(tmp_path: Path) -> None:
    node = SimulatedNode("va1-c01-n009", tmp_path)
    base_url, stop = start_simulated_node_in_thread(node, token=TOKEN)
    try:
        assert httpx.get(f"{base_url}/v1/health").status_code == 200
        node.set_fault("refuse")
        assert wait_for_connect_error(f"{base_url}/v1/health")
        node.clear_faults()
        assert wait_for_answer(f"{base_url}/v1/gpus").json()["node"] == "va1-c01-n009"
    finally:
        stop()


def wait_for_connect_error(url: str) -> bool:
    """Whether connecting fails within 5 s (the port closes asynchronously)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            httpx.get(url)
        except httpx.ConnectError:
            return True
        except httpx.TransportError:
            pass  # still listening: the request was dropped, not refused
        time.sleep(0.02)
    return False


def wait_for_answer(url: str) -> httpx.Response:
    """The first answer once the port reopens, within 5 s."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return httpx.get(url, headers=AUTH)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_it_refuses_an_unknown_fault(served_fleet: FleetServer) -> None:
    response = set_fault(served_fleet, fault="meltdown")
    assert response.status_code == 400 and response.json()["error"] == "unknown_fault"


def test_it_refuses_unknown_fault_fields(served_fleet: FleetServer) -> None:
    response = set_fault(served_fleet, fault="xid", gpu=3)
    assert response.status_code == 400 and "gpu" in response.json()["detail"]


def test_it_refuses_a_fault_on_a_gpu_out_of_range(served_fleet: FleetServer) -> None:
    response = set_fault(served_fleet, fault="xid", gpu_index=8)
    assert response.status_code == 400 and response.json()["error"] == "gpu_index_out_of_range"


def test_it_refuses_a_fault_value_of_the_wrong_type(served_fleet: FleetServer) -> None:
    response = set_fault(served_fleet, fault="slow", seconds="long")
    assert response.status_code == 400 and "seconds" in response.json()["detail"]


def test_fault_control_needs_the_token(served_fleet: FleetServer) -> None:
    response = httpx.post(served_fleet.url(NODE, "v1/simulate/faults"), json={"fault": "refuse"})
    assert response.status_code == 401
    assert served_fleet.fleet.node(NODE).faults.refuse is False
