"""Simulated GPU nodes: deterministic readings, real lease files, switchable faults."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from nodeagent.leases import LeaseStore
from nodeagent.model import (
    AgentError,
    GpuReading,
    InstallResult,
    Reading,
    RevokeResult,
    Xid,
    utc_iso,
)
from nodeagent.protocol import Peer, simulated_gpu_uuid

GPU_NAME = "NVIDIA H100 80GB HBM3"
MEMORY_TOTAL_BYTES = 80 * 1024**3
POWER_LIMIT_W = 700.0
# Readings change every bucket, like a poller would see a real workload move.
BUCKET_S = 5.0
GPU_FAULTS = ("xid", "ecc", "overheat", "gpu_lost")
# garbage: answers 200 with a body that is not JSON; restart: the agent is down for `seconds`, then
# answers again with nothing in memory (leases are read back from disk), as a restarted process would.
NODE_FAULTS = ("slow", "refuse", "nvml_error", "garbage", "restart")
FAULTS = GPU_FAULTS + NODE_FAULTS


def simulated_hostnames(prefix: str, count: int) -> list[str]:
    """Hostnames prefix0001, prefix0002, ... for a simulated fleet."""
    return [f"{prefix}{n:04d}" for n in range(1, count + 1)]


@dataclass
class NodeFaults:
    """The faults switched on for one simulated node."""

    xid: dict[int, Xid] = field(default_factory=dict)
    ecc: dict[int, int] = field(default_factory=dict)
    overheat: dict[int, int] = field(default_factory=dict)
    lost: set[int] = field(default_factory=set)
    delay_s: float = 0.0
    slow_answers: int | None = None  # how many answers are still delayed; None: all of them
    refuse: bool = False
    nvml_error: str | None = None
    garbage: bool = False
    down_until: float = 0.0


def _number(value: object, name: str, low: float, high: float) -> float:
    """Check a numeric fault parameter lies in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise AgentError(400, "invalid_fault", f"{name} must be a number from {low} to {high}.")
    return value


def _gpu_reading(index: int, uuid: str, busy: bool, rng: random.Random) -> GpuReading:
    """Plausible readings for a GPU running a lease's job (busy) or idle."""
    # rng.random() rather than randint/uniform: this runs for every GPU of the
    # fleet in each time bucket.
    r = rng.random
    if busy:
        util, mem_share, temp, power = 70 + 30 * r(), 0.6 + 0.35 * r(), 55 + 23 * r(), 450 + 240 * r()
    else:
        util, mem_share, temp, power = 2.9 * r(), 0.01 * r(), 28 + 10 * r(), 65 + 25 * r()
    return GpuReading(
        index=index,
        uuid=uuid,
        name=GPU_NAME,
        utilization_pct=int(util),
        memory_used_bytes=int(MEMORY_TOTAL_BYTES * mem_share),
        memory_total_bytes=MEMORY_TOTAL_BYTES,
        temperature_c=int(temp),
        power_draw_w=round(power, 1),
        power_limit_w=POWER_LIMIT_W,
        ecc_uncorrectable_volatile=0,
    )


class SimulatedNode:
    """One simulated 8-GPU node; implements the Backend protocol."""

    name = "simulated"
    blocking = False

    def __init__(
        self,
        hostname: str,
        lease_root: Path,
        *,
        gpus: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hostname = hostname
        self.gpus = gpus
        self.clock = clock
        self.leases = LeaseStore(Path(lease_root) / hostname)
        self.faults = NodeFaults()
        self.refuse_listeners: list[Callable[[bool], None]] = []
        self._busy: frozenset[int] | None = None
        self._installed: tuple[str, ...] | None = None
        self._uuids: list[str] | None = None
        self._version = 0
        self._cache: tuple[tuple[int, int], Reading] | None = None
        self._lock = threading.Lock()

    def gpu_count(self) -> int:
        """Number of GPUs; none are readable while NVML is failing."""
        return 0 if self.faults.nvml_error else self.gpus

    def busy_gpus(self) -> frozenset[int]:
        """GPUs held by an active lease, read from disk once and then tracked."""
        if self._busy is None:
            self._busy = self.leases.active_gpus()
        return self._busy

    def installed_leases(self) -> tuple[str, ...]:
        """Ids of the active leases, read from disk once and then tracked."""
        if self._installed is None:
            self._installed = self.leases.active_leases()
        return self._installed

    def read_gpus(self) -> Reading:
        """The reading for the current time bucket, with faults applied."""
        now = self.clock()
        key = (int(now // BUCKET_S), self._version)
        cached = self._cache
        if cached is None or cached[0] != key:
            cached = (key, self._compute(key[0]))
            self._cache = cached
        return replace(cached[1], read_at=datetime.fromtimestamp(now, UTC))

    def _compute(self, bucket: int) -> Reading:
        """Build the reading of one bucket from a seed of hostname and bucket."""
        moment = datetime.fromtimestamp(bucket * BUCKET_S, UTC)
        if self.faults.nvml_error:
            return Reading(self.hostname, self.name, moment, error=self.faults.nvml_error)
        if self._uuids is None:
            self._uuids = [simulated_gpu_uuid(self.hostname, i) for i in range(self.gpus)]
        rng = random.Random(f"{self.hostname}/{bucket}")
        busy = self.busy_gpus()
        gpus = tuple(
            self._apply_faults(_gpu_reading(i, uuid, i in busy, rng)) for i, uuid in enumerate(self._uuids)
        )
        return Reading(self.hostname, self.name, moment, gpus)

    def _apply_faults(self, gpu: GpuReading) -> GpuReading:
        """Overlay the GPU's faults on its normal readings."""
        faults, i = self.faults, gpu.index
        if i in faults.lost:
            return GpuReading(index=i, uuid=gpu.uuid, name=gpu.name, lost=True)
        if i not in faults.xid and i not in faults.ecc and i not in faults.overheat:
            return gpu
        return replace(
            gpu,
            last_xid=faults.xid.get(i),
            ecc_uncorrectable_volatile=faults.ecc.get(i, 0),
            temperature_c=faults.overheat.get(i, gpu.temperature_c),
        )

    def install_lease(
        self,
        lease_id: str,
        gpu_indices: tuple[int, ...],
        keys: tuple[str, ...],
        *,
        sudo: bool = False,
        peers: tuple[Peer, ...] = (),
        placement: int = 0,
    ) -> InstallResult:
        """Write the lease's keys under the node's lease root (no account here: sudo and peers unused)."""
        record, changed = self.leases.install(lease_id, gpu_indices, keys, placement)
        if changed:
            self._leases_changed()
        account = self.leases.account_dir(lease_id).name
        return InstallResult(lease_id, account, record.gpu_indices, len(keys), changed)

    def revoke_lease(self, lease_id: str) -> RevokeResult:
        """Remove the lease's keys; its (simulated) job on each GPU stops."""
        record, changed = self.leases.revoke(lease_id)
        if changed:
            self._leases_changed()
        stopped = len(record.gpu_indices) if changed else 0
        return RevokeResult(lease_id, processes_stopped=stopped, gpus_clean=True, changed=changed)

    def _leases_changed(self) -> None:
        """Forget cached lease and reading state after a lease change."""
        self._busy = None
        self._installed = None
        self._version += 1

    @property
    def refusing(self) -> bool:
        """The refuse fault: the node's server closes its port (nodeagent/simulator.py)."""
        return self.faults.refuse

    @property
    def down(self) -> bool:
        """Restarting: no answer at all until the restart is over."""
        return self.clock() < self.faults.down_until

    def slow_answer(self) -> bool:
        """Whether this answer is delayed by the slow fault, counting it when only some are."""
        with self._lock:
            faults = self.faults
            if not faults.delay_s or faults.slow_answers == 0:
                return False
            if faults.slow_answers is not None:
                faults.slow_answers -= 1
            return True

    def restart(self, seconds: float) -> None:
        """Down for `seconds`, then up with nothing remembered but what is on disk."""
        self.faults.down_until = self.clock() + seconds
        self._cache = None
        self._leases_changed()

    def faults_json(self) -> dict[str, object]:
        """The switched-on faults, as the fault endpoints answer them."""
        with self._lock:  # another thread may be switching a fault on
            faults = self.faults
            return {
                "xid": {str(i): asdict(x) for i, x in sorted(faults.xid.items())},
                "ecc": {str(i): n for i, n in sorted(faults.ecc.items())},
                "overheat": {str(i): t for i, t in sorted(faults.overheat.items())},
                "gpu_lost": sorted(faults.lost),
                "slow": faults.delay_s,
                "slow_answers": faults.slow_answers,
                "refuse": faults.refuse,
                "nvml_error": faults.nvml_error,
                "garbage": faults.garbage,
                "restarting_s": round(max(0.0, faults.down_until - self.clock()), 3),
            }

    def set_fault(
        self,
        fault: str,
        *,
        gpu_index: int | None = None,
        code: int = 79,
        count: int = 1,
        temperature_c: int = 95,
        seconds: float = 2.0,
        message: str = "NVML Shared Library Not Found",
        answers: int | None = None,
    ) -> None:
        """Switch a fault on; GPU faults without gpu_index hit every GPU; `answers` limits slow."""
        if fault not in FAULTS:
            raise AgentError(400, "unknown_fault", f"Unknown fault {fault!r}; known: {FAULTS}.")
        with self._lock:
            if fault in GPU_FAULTS:
                self._set_gpu_fault(fault, self._fault_gpus(gpu_index), code, count, temperature_c)
            elif fault == "slow":
                self.faults.delay_s = _number(seconds, "seconds", 0, 600)
                self.faults.slow_answers = (
                    None if answers is None else int(_number(answers, "answers", 1, 10**6))
                )
            elif fault == "garbage":
                self.faults.garbage = True
            elif fault == "restart":
                self.restart(_number(seconds, "seconds", 0, 600))
            elif fault == "nvml_error":
                self.faults.nvml_error = str(message) or "NVML error"
            else:
                self._set_refuse(True)
            self._version += 1

    def _fault_gpus(self, gpu_index: int | None) -> range:
        """The GPUs a GPU fault applies to."""
        if gpu_index is None:
            return range(self.gpus)
        if isinstance(gpu_index, bool) or not isinstance(gpu_index, int):
            raise AgentError(400, "invalid_fault", "gpu_index must be an integer.")
        if not 0 <= gpu_index < self.gpus:
            raise AgentError(
                400,
                "gpu_index_out_of_range",
                f"gpu_index {gpu_index} is out of range: this node has GPUs 0-{self.gpus - 1}.",
            )
        return range(gpu_index, gpu_index + 1)

    def _set_gpu_fault(self, fault: str, gpus: range, code: int, count: int, temperature_c: int) -> None:
        """Record a GPU fault on each of the given GPUs."""
        at = utc_iso(datetime.fromtimestamp(self.clock(), UTC))
        for i in gpus:
            if fault == "xid":
                self.faults.xid[i] = Xid(int(_number(code, "code", 1, 1_000_000)), at)
            elif fault == "ecc":
                self.faults.ecc[i] = int(_number(count, "count", 0, 1_000_000))
            elif fault == "overheat":
                self.faults.overheat[i] = int(_number(temperature_c, "temperature_c", -50, 200))
            else:
                self.faults.lost.add(i)

    def clear_faults(self, fault: str | None = None) -> None:
        """Switch one fault, or every fault, off."""
        if fault is not None and fault not in FAULTS:
            raise AgentError(400, "unknown_fault", f"Unknown fault {fault!r}; known: {FAULTS}.")
        with self._lock:
            old, cleared = self.faults, NodeFaults()
            if fault is not None:
                attr = {"gpu_lost": "lost", "slow": "delay_s", "restart": "down_until"}.get(fault, fault)
                cleared = replace(old, **{attr: getattr(NodeFaults(), attr)})
            self.faults = cleared
            self._set_refuse(cleared.refuse, was=old.refuse)
            self._version += 1

    def _set_refuse(self, refuse: bool, was: bool | None = None) -> None:
        """Set the refuse fault and tell listeners (the server) when it flips."""
        was = self.faults.refuse if was is None else was
        self.faults.refuse = refuse
        if refuse != was:
            for listener in list(self.refuse_listeners):
                listener(refuse)


class SimulatedFleet:
    """Many simulated nodes served by one process, keyed by hostname."""

    def __init__(
        self,
        hostnames: Iterable[str],
        lease_root: Path | str,
        *,
        gpus_per_node: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lease_root = Path(lease_root)
        self.nodes: dict[str, SimulatedNode] = {
            name: SimulatedNode(name, self.lease_root, gpus=gpus_per_node, clock=clock) for name in hostnames
        }
        if not self.nodes:
            raise ValueError("a simulated fleet needs at least one hostname")

    @property
    def hostnames(self) -> list[str]:
        """Hostnames of the fleet, in the order given."""
        return list(self.nodes)

    def node(self, hostname: str) -> SimulatedNode:
        """The simulated node with this hostname; KeyError when unknown."""
        return self.nodes[hostname]

    def set_fault(self, hostname: str, fault: str, **params: object) -> None:
        """Switch a fault on for one node (see SimulatedNode.set_fault)."""
        self.node(hostname).set_fault(fault, **params)  # type: ignore[arg-type]

    def clear_faults(self, hostname: str, fault: str | None = None) -> None:
        """Switch one fault, or all of them, off for one node."""
        self.node(hostname).clear_faults(fault)
