"""Test doubles of the node agent tests: a served fleet's handle and a pynvml-shaped fake."""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pynvml

from nodeagent.backends.simulated import SimulatedFleet
from nodeagent.simulator import node_url

TOKEN = "test-agent-token-0123456789"
HOSTNAMES = ["tx1-c01-n001", "tx1-c01-n002", "va1-c02-n003"]


@dataclass
class FleetServer:
    """A simulated fleet served over real HTTP on an ephemeral port."""

    fleet: SimulatedFleet
    base_url: str
    lease_root: Path
    client: httpx.Client

    def url(self, hostname: str, path: str) -> str:
        """Full URL of an endpoint of one node, path like 'v1/gpus'."""
        return node_url(self.base_url, hostname) + path

    def keys_file(self, hostname: str, account: str) -> Path:
        """Where the simulator writes a lease account's authorized_keys."""
        return self.lease_root / hostname / account / ".ssh" / "authorized_keys"


def nvml_error(code: int) -> pynvml.NVMLError:
    """The real pynvml exception (its subclass) for an NVML return code."""
    return pynvml.NVMLError(code)


@dataclass
class FakeGpu:
    """The state of one fake GPU."""

    index: int
    util: int = 50
    memory_used: int = 10 * 1024**3
    memory_total: int = 80 * 1024**3
    temperature: int = 60
    power_mw: int = 512_300
    limit_mw: int = 700_000
    ecc: int = 0
    pids: list[int] = field(default_factory=list)
    lost: bool = False
    unsupported: set[str] = field(default_factory=set)

    @property
    def uuid(self) -> str:
        """A stable fake UUID."""
        return f"GPU-00000000-0000-0000-0000-{self.index:012d}"


class FakeNvml:
    """A pynvml-shaped module: real constants and NVMLError classes, fake C calls."""

    def __init__(self, gpus: int = 8) -> None:
        for name in dir(pynvml):
            if name.startswith(("NVML_", "NVMLError", "nvmlEventType")):
                setattr(self, name, getattr(pynvml, name))
        self.gpus = [FakeGpu(i) for i in range(gpus)]
        self.handles = [SimpleNamespace(index=i) for i in range(gpus)]
        self.init_error: int | None = None
        self.driver_error: int | None = None
        self.events: deque[SimpleNamespace] = deque()
        self.registered: list[int] = []
        self.inits = 0
        self.shutdowns = 0

    def _gpu(self, handle: SimpleNamespace, call: str) -> FakeGpu:
        """The GPU behind a handle, raising what NVML would for its state."""
        if self.driver_error is not None:
            raise nvml_error(self.driver_error)
        gpu = self.gpus[handle.index]
        if gpu.lost:
            raise nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)
        if call in gpu.unsupported:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise nvml_error(self.init_error)
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        if self.driver_error is not None:
            raise nvml_error(self.driver_error)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimpleNamespace:
        self._gpu(self.handles[index], "handle")
        return self.handles[index]

    def nvmlDeviceGetUUID(self, handle: SimpleNamespace) -> str:
        return self._gpu(handle, "uuid").uuid

    def nvmlDeviceGetName(self, handle: SimpleNamespace) -> str:
        self._gpu(handle, "name")
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, handle: SimpleNamespace) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._gpu(handle, "util").util, memory=10)

    def nvmlDeviceGetMemoryInfo(self, handle: SimpleNamespace) -> SimpleNamespace:
        gpu = self._gpu(handle, "memory")
        free = gpu.memory_total - gpu.memory_used
        return SimpleNamespace(total=gpu.memory_total, used=gpu.memory_used, free=free)

    def nvmlDeviceGetTemperature(self, handle: SimpleNamespace, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._gpu(handle, "temperature").temperature

    def nvmlDeviceGetPowerUsage(self, handle: SimpleNamespace) -> int:
        return self._gpu(handle, "power").power_mw

    def nvmlDeviceGetEnforcedPowerManagementLimit(self, handle: SimpleNamespace) -> int:
        return self._gpu(handle, "limit").limit_mw

    def nvmlDeviceGetTotalEccErrors(self, handle: SimpleNamespace, kind: int, counter: int) -> int:
        assert kind == pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        assert counter == pynvml.NVML_VOLATILE_ECC
        return self._gpu(handle, "ecc").ecc

    def nvmlDeviceGetComputeRunningProcesses(self, handle: SimpleNamespace) -> list[Any]:
        gpu = self._gpu(handle, "processes")
        return [SimpleNamespace(pid=pid, usedGpuMemory=1024) for pid in gpu.pids]

    def nvmlEventSetCreate(self) -> object:
        return "event-set"

    def nvmlDeviceRegisterEvents(self, handle: SimpleNamespace, types: int, event_set: Any) -> None:
        self._gpu(handle, "events")
        assert types & pynvml.nvmlEventTypeXidCriticalError
        self.registered.append(handle.index)

    def nvmlEventSetWait(self, event_set: Any, timeout_ms: int) -> SimpleNamespace:
        assert timeout_ms == 0, "a reading must never wait for events"
        if not self.events:
            raise nvml_error(pynvml.NVML_ERROR_TIMEOUT)
        return self.events.popleft()

    def nvmlEventSetFree(self, event_set: Any) -> None:
        return None

    def raise_xid(self, index: int, code: int) -> None:
        """Queue an XID critical error event from one GPU."""
        event = SimpleNamespace(
            device=self.handles[index],
            eventType=pynvml.nvmlEventTypeXidCriticalError,
            eventData=code,
            gpuInstanceId=0,
            computeInstanceId=0,
        )
        self.events.append(event)


class DeviceFileNvml(FakeNvml):
    """A fake NVML whose GPU i is busy while some process holds <device_dir>/nvidia<i> open.

    What the real driver reports (a process with a context on the GPU, its memory in use) is
    faked at the boundary from what the kernel shows: the descriptors in /proc/<pid>/fd.
    `leaked[i]` bytes stay used on GPU i with no process, as memory a driver fault keeps.
    """

    PER_PROCESS_BYTES = 2 * 1024**3

    def __init__(self, device_dir: Path, gpus: int = 8) -> None:
        super().__init__(gpus)
        self.device_dir = device_dir
        self.leaked: dict[int, int] = {}

    def holders(self, index: int) -> list[int]:
        """PIDs with the GPU's device file open."""
        target = str(self.device_dir / f"nvidia{index}")
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                links = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
            except OSError:
                continue
            if target in links:
                pids.append(int(proc.name))
        return pids

    def nvmlDeviceGetComputeRunningProcesses(self, handle: SimpleNamespace) -> list[Any]:
        self._gpu(handle, "processes")
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=self.PER_PROCESS_BYTES)
            for pid in self.holders(handle.index)
        ]

    def nvmlDeviceGetMemoryInfo(self, handle: SimpleNamespace) -> SimpleNamespace:
        gpu = self._gpu(handle, "memory")
        used = self.leaked.get(handle.index, 0) + self.PER_PROCESS_BYTES * len(self.holders(handle.index))
        return SimpleNamespace(total=gpu.memory_total, used=used, free=gpu.memory_total - used)
