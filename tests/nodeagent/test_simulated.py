"""The simulated backend used in-process: readings, leases on disk, faults."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from nodeagent.backends.simulated import BUCKET_S, SimulatedFleet, SimulatedNode, simulated_hostnames
from nodeagent.model import AgentError
from nodeagent.protocol import simulated_gpu_uuid


class Clock:
    """A settable clock, so tests move readings between time buckets."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_node(tmp_path: Path, clock: Clock | None = None, hostname: str = "tx1-c01-n001") -> SimulatedNode:
    """A simulated node with its leases under tmp_path."""
    return SimulatedNode(hostname, tmp_path, clock=clock or Clock())


def test_gpu_uuids_are_uuid5_of_hostname_and_index() -> None:
    expected = "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_DNS, "tx1-c01-n001/gpu3"))
    assert simulated_gpu_uuid("tx1-c01-n001", 3) == expected


def test_it_reports_eight_h100s_with_the_shared_uuids(tmp_path: Path) -> None:
    reading = make_node(tmp_path).read_gpus()
    assert [g.index for g in reading.gpus] == list(range(8))
    assert [g.uuid for g in reading.gpus] == [simulated_gpu_uuid("tx1-c01-n001", i) for i in range(8)]
    assert {g.name for g in reading.gpus} == {"NVIDIA H100 80GB HBM3"}
    assert reading.backend == "simulated" and not reading.degraded


def test_two_nodes_with_the_same_hostname_read_the_same(tmp_path: Path) -> None:
    first, second = make_node(tmp_path / "a"), make_node(tmp_path / "b")
    assert first.read_gpus().gpus == second.read_gpus().gpus


def test_readings_move_from_one_time_bucket_to_the_next(tmp_path: Path) -> None:
    clock = Clock()
    node = make_node(tmp_path, clock)
    before = node.read_gpus().gpus
    clock.now += BUCKET_S
    assert node.read_gpus().gpus != before


def test_read_at_is_the_time_of_the_request_not_of_the_bucket(tmp_path: Path) -> None:
    clock = Clock(1_700_000_001.5)
    assert make_node(tmp_path, clock).read_gpus().read_at.timestamp() == 1_700_000_001.5


def test_idle_gpus_are_near_zero_and_leased_gpus_are_busy(tmp_path: Path, ssh_keys: dict[str, str]) -> None:
    node = make_node(tmp_path)
    assert all(g.utilization_pct <= 3 for g in node.read_gpus().gpus)
    node.install_lease("lease-busy-1", (2, 3), (ssh_keys["ed25519"],))
    gpus = node.read_gpus().gpus
    assert all(70 <= gpus[i].utilization_pct <= 100 for i in (2, 3))
    assert gpus[2].memory_used_bytes > 0.5 * gpus[2].memory_total_bytes
    assert all(gpus[i].utilization_pct <= 3 for i in (0, 1, 4, 5, 6, 7))


def test_a_revoked_lease_leaves_its_gpus_idle(tmp_path: Path, ssh_keys: dict[str, str]) -> None:
    node = make_node(tmp_path)
    node.install_lease("lease-busy-2", (0,), (ssh_keys["ed25519"],))
    result = node.revoke_lease("lease-busy-2")
    assert result.processes_stopped == 1 and result.gpus_clean
    assert node.read_gpus().gpus[0].utilization_pct <= 3


def test_a_restarted_simulator_remembers_the_leases_on_disk(tmp_path: Path, ssh_keys: dict[str, str]) -> None:
    make_node(tmp_path).install_lease("lease-disk-1", (5,), (ssh_keys["ed25519"],))
    assert make_node(tmp_path).read_gpus().gpus[5].utilization_pct >= 70


def test_the_xid_fault_sets_last_xid_on_one_gpu(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    node.set_fault("xid", gpu_index=3, code=48)
    gpus = node.read_gpus().gpus
    assert gpus[3].last_xid is not None and gpus[3].last_xid.code == 48
    assert [g.index for g in gpus if g.last_xid] == [3]


def test_a_gpu_fault_without_an_index_hits_every_gpu(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    node.set_fault("overheat", temperature_c=97)
    assert {g.temperature_c for g in node.read_gpus().gpus} == {97}


def test_the_ecc_and_gpu_lost_faults_show_in_the_reading(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    node.set_fault("ecc", gpu_index=1, count=4)
    node.set_fault("gpu_lost", gpu_index=6)
    gpus = node.read_gpus().gpus
    assert gpus[1].ecc_uncorrectable_volatile == 4
    assert gpus[6].lost and gpus[6].utilization_pct is None and gpus[6].temperature_c is None


def test_clearing_one_fault_keeps_the_others(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    node.set_fault("ecc", gpu_index=1, count=2)
    node.set_fault("gpu_lost", gpu_index=6)
    node.clear_faults("gpu_lost")
    gpus = node.read_gpus().gpus
    assert not gpus[6].lost and gpus[1].ecc_uncorrectable_volatile == 2


def test_the_nvml_error_fault_degrades_the_node(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    node.set_fault("nvml_error", message="Driver Not Loaded")
    reading = node.read_gpus()
    assert reading.degraded and reading.error == "Driver Not Loaded" and reading.gpus == ()
    node.clear_faults()
    assert not node.read_gpus().degraded


def test_it_refuses_an_unknown_fault_or_gpu(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    with pytest.raises(AgentError, match="Unknown fault"):
        node.set_fault("meltdown")
    with pytest.raises(AgentError, match="out of range"):
        node.set_fault("xid", gpu_index=8)


def test_the_fleet_sets_faults_by_hostname(tmp_path: Path) -> None:
    fleet = SimulatedFleet(simulated_hostnames("sim-", 3), tmp_path)
    fleet.set_fault("sim-0002", "slow", seconds=1.5)
    assert fleet.node("sim-0002").faults.delay_s == 1.5
    assert fleet.node("sim-0001").faults.delay_s == 0
    fleet.clear_faults("sim-0002", "slow")
    assert fleet.node("sim-0002").faults.delay_s == 0


def test_a_restarted_agent_remembers_a_revoked_lease(tmp_path: Path, ssh_keys: dict[str, str]) -> None:
    node = make_node(tmp_path)
    node.install_lease("lease-tomb-1", (1,), (ssh_keys["ed25519"],))
    node.revoke_lease("lease-tomb-1")
    again = make_node(tmp_path).revoke_lease("lease-tomb-1")
    assert (again.revoked, again.changed) == (True, False)
    assert not (tmp_path / "tx1-c01-n001" / "vp-leasetomb1" / ".ssh" / "authorized_keys").exists()
