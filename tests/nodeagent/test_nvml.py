"""The NVML backend against a pynvml-shaped fake (real constants and error classes)."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pynvml

from nodeagent.backends.nvml import NvmlBackend
from nodeagent.server import start_node_in_thread
from tests.nodeagent.fakes import TOKEN, FakeNvml

Kills = tuple[list[tuple[int, int]], Callable[[int, int], None]]


def backend(fake: FakeNvml, tmp_path: Path, kill: Callable[[int, int], None] | None = None) -> NvmlBackend:
    """An NVML backend on the fake, with leases under tmp_path."""
    return NvmlBackend("gpu-node-1", tmp_path, nvml=fake, kill=kill or (lambda pid, sig: None), settle_s=0.2)


def test_it_reads_every_gpu_with_units_converted(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    fake_nvml.gpus[2].ecc = 5
    reading = backend(fake_nvml, tmp_path).read_gpus()
    gpu = reading.gpus[2]
    assert not reading.degraded and len(reading.gpus) == 8
    assert (gpu.index, gpu.uuid, gpu.name) == (2, fake_nvml.gpus[2].uuid, "NVIDIA H100 80GB HBM3")
    assert (gpu.utilization_pct, gpu.temperature_c, gpu.ecc_uncorrectable_volatile) == (50, 60, 5)
    assert (gpu.power_draw_w, gpu.power_limit_w) == (512.3, 700.0)
    assert (gpu.memory_used_bytes, gpu.memory_total_bytes) == (10 * 1024**3, 80 * 1024**3)


def test_it_initializes_nvml_once_across_readings(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    agent = backend(fake_nvml, tmp_path)
    for _ in range(3):
        agent.read_gpus()
    assert fake_nvml.inits == 1
    assert fake_nvml.registered == list(range(8))


def test_a_missing_nvml_library_gives_a_degraded_reading(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    fake_nvml.init_error = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
    reading = backend(fake_nvml, tmp_path).read_gpus()
    assert reading.degraded and reading.gpus == ()
    assert reading.error == "NVMLError_LibraryNotFound: NVML Shared Library Not Found"


def test_it_recovers_when_nvml_comes_back(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    agent = backend(fake_nvml, tmp_path)
    fake_nvml.init_error = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    assert agent.read_gpus().degraded
    fake_nvml.init_error = None
    assert len(agent.read_gpus().gpus) == 8


def test_a_driver_failure_after_start_degrades_then_restarts_nvml(
    fake_nvml: FakeNvml, tmp_path: Path
) -> None:
    agent = backend(fake_nvml, tmp_path)
    agent.read_gpus()
    fake_nvml.driver_error = pynvml.NVML_ERROR_UNINITIALIZED
    assert agent.read_gpus().error.startswith("NVMLError_Uninitialized")
    assert fake_nvml.shutdowns == 1
    fake_nvml.driver_error = None
    assert not agent.read_gpus().degraded and fake_nvml.inits == 2


def test_a_lost_gpu_is_reported_lost_with_null_readings(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    agent = backend(fake_nvml, tmp_path)
    agent.read_gpus()
    fake_nvml.gpus[5].lost = True
    reading = agent.read_gpus()
    lost = reading.gpus[5]
    assert not reading.degraded
    assert lost.lost and lost.uuid == fake_nvml.gpus[5].uuid
    assert (lost.utilization_pct, lost.temperature_c, lost.memory_used_bytes) == (None, None, None)
    assert not any(g.lost for g in reading.gpus if g.index != 5)


def test_a_gpu_lost_before_start_is_lost_and_comes_back_when_it_returns(
    fake_nvml: FakeNvml, tmp_path: Path
) -> None:
    fake_nvml.gpus[0].lost = True
    agent = backend(fake_nvml, tmp_path)
    assert agent.read_gpus().gpus[0].lost
    fake_nvml.gpus[0].lost = False
    assert agent.read_gpus().gpus[0].utilization_pct == 50


def test_an_unsupported_counter_reads_as_none(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    fake_nvml.gpus[1].unsupported = {"ecc", "limit"}
    gpu = backend(fake_nvml, tmp_path).read_gpus().gpus[1]
    assert (gpu.ecc_uncorrectable_volatile, gpu.power_limit_w, gpu.lost) == (None, None, False)
    assert gpu.temperature_c == 60


def test_xid_events_are_drained_at_each_reading(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    agent = backend(fake_nvml, tmp_path)
    agent.read_gpus()
    fake_nvml.raise_xid(3, 48)
    fake_nvml.raise_xid(3, 79)
    fake_nvml.raise_xid(6, 13)
    gpus = agent.read_gpus().gpus
    assert not fake_nvml.events
    assert (gpus[3].last_xid.code, gpus[6].last_xid.code) == (79, 13)
    assert gpus[0].last_xid is None


def test_the_last_xid_is_kept_across_readings(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    agent = backend(fake_nvml, tmp_path)
    agent.read_gpus()
    fake_nvml.raise_xid(2, 79)
    first = agent.read_gpus().gpus[2].last_xid
    assert first is not None and first.code == 79
    assert agent.read_gpus().gpus[2].last_xid == first


def test_revoking_kills_the_processes_on_the_lease_gpus(
    fake_nvml: FakeNvml, tmp_path: Path, kills: Kills, ssh_keys: dict[str, str]
) -> None:
    record, kill = kills
    fake_nvml.gpus[0].pids, fake_nvml.gpus[1].pids, fake_nvml.gpus[4].pids = [4242, 4243], [4242], [999]
    agent = backend(fake_nvml, tmp_path, kill)
    agent.install_lease("lease-kill-1", (0, 1), (ssh_keys["ed25519"],))
    result = agent.revoke_lease("lease-kill-1")
    assert (result.processes_stopped, result.gpus_clean, result.changed) == (2, True, True)
    assert sorted(record) == [(4242, signal.SIGKILL), (4243, signal.SIGKILL)]
    assert fake_nvml.gpus[4].pids == [999]


def test_a_process_that_survives_leaves_the_gpus_unclean(
    fake_nvml: FakeNvml, tmp_path: Path, ssh_keys: dict[str, str]
) -> None:
    fake_nvml.gpus[0].pids = [5150]
    agent = backend(fake_nvml, tmp_path)
    agent.install_lease("lease-stuck-1", (0,), (ssh_keys["ed25519"],))
    result = agent.revoke_lease("lease-stuck-1")
    assert (result.processes_stopped, result.gpus_clean) == (1, False)


def test_a_second_revoke_kills_nothing(
    fake_nvml: FakeNvml, tmp_path: Path, kills: Kills, ssh_keys: dict[str, str]
) -> None:
    record, kill = kills
    agent = backend(fake_nvml, tmp_path, kill)
    agent.install_lease("lease-twice-1", (0,), (ssh_keys["ed25519"],))
    agent.revoke_lease("lease-twice-1")
    fake_nvml.gpus[0].pids = [7777]
    result = agent.revoke_lease("lease-twice-1")
    assert (result.changed, result.processes_stopped, record) == (False, 0, [])


def test_it_writes_authorized_keys_under_the_lease_root(
    fake_nvml: FakeNvml, tmp_path: Path, ssh_keys: dict[str, str]
) -> None:
    result = backend(fake_nvml, tmp_path).install_lease("LEASE-abc-123", (0,), (ssh_keys["ecdsa"],))
    keys_file = tmp_path / "vp-leaseabc123" / ".ssh" / "authorized_keys"
    assert result.account == "vp-leaseabc123"
    assert keys_file.read_text() == ssh_keys["ecdsa"] + "\n"
    assert keys_file.stat().st_mode & 0o777 == 0o644


def test_a_node_without_nvml_answers_200_degraded_over_http(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    fake_nvml.init_error = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
    base_url, stop = start_node_in_thread(backend(fake_nvml, tmp_path), token=TOKEN)
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        response = httpx.get(f"{base_url}/v1/gpus", headers=auth)
        health = httpx.get(f"{base_url}/v1/health").json()
    finally:
        stop()
    assert response.status_code == 200
    assert response.json()["degraded"] is True and response.json()["gpus"] == []
    assert health == {"status": "degraded", "backend": "nvml", "node": "gpu-node-1", "gpus": 0}


def test_a_real_node_serves_readings_and_has_no_fault_endpoints(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    base_url, stop = start_node_in_thread(
        backend(fake_nvml, tmp_path), token_sha256=hashlib.sha256(TOKEN.encode()).hexdigest()
    )
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        body = httpx.get(f"{base_url}/v1/gpus", headers=auth).json()
        faults = httpx.post(f"{base_url}/v1/simulate/faults", headers=auth, json={"fault": "refuse"})
    finally:
        stop()
    assert body["backend"] == "nvml" and body["gpus"][0]["power_draw_w"] == 512.3
    assert faults.status_code == 404
