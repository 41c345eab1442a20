"""The real backend: GPU readings through NVML (pynvml), lease keys on local disk."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nodeagent.leases import LeaseStore
from nodeagent.model import (
    GpuReading,
    InstallResult,
    Reading,
    RevokeResult,
    Xid,
    utc_iso,
)
from nodeagent.protocol import Peer

DEFAULT_LEASE_ROOT = Path("/var/lib/voltpark/leases")
# A bound on one drain, so a GPU storming events cannot stall a reading.
MAX_EVENTS_PER_DRAIN = 256
# Errors that mean NVML as a whole is unusable, not one GPU or one counter.
NODE_ERRORS = (
    "NVMLError_Uninitialized",
    "NVMLError_DriverNotLoaded",
    "NVMLError_LibraryNotFound",
    "NVMLError_LibRmVersionMismatch",
)
# Errors after which a GPU cannot be used until the node is serviced.
LOST_ERRORS = ("NVMLError_GpuIsLost", "NVMLError_ResetRequired")


@dataclass(frozen=True)
class GpuUse:
    """What holds one GPU: its compute processes and its memory in use (None when unknown)."""

    pids: frozenset[int]
    memory_used_bytes: int | None


@dataclass
class _Device:
    """A GPU's cached handle and identity; handle None while it cannot be opened."""

    index: int
    handle: Any = None
    uuid: str | None = None
    name: str | None = None


def _text(value: str | bytes) -> str:
    """pynvml returns bytes in old versions and str in new ones."""
    return value.decode() if isinstance(value, bytes) else value


def _address(handle: Any) -> int | None:
    """The C address of an NVML handle, to match an event to its device."""
    try:
        return ctypes.cast(handle, ctypes.c_void_p).value
    except (TypeError, ctypes.ArgumentError):
        return None


class NvmlBackend:
    """Reads GPUs through NVML; nvml is the pynvml module or a test double of it."""

    name = "nvml"
    blocking = True

    def __init__(
        self,
        hostname: str,
        lease_root: Path = DEFAULT_LEASE_ROOT,
        *,
        nvml: Any = None,
        kill: Callable[[int, int], None] = os.kill,
        settle_s: float = 2.0,
    ) -> None:
        self.hostname = hostname
        self.nv = nvml if nvml is not None else importlib.import_module("pynvml")
        self.leases = LeaseStore(Path(lease_root))
        self.kill = kill
        self.settle_s = settle_s
        self._node_errors = tuple(getattr(self.nv, n) for n in NODE_ERRORS)
        self._lost_errors = tuple(getattr(self.nv, n) for n in LOST_ERRORS)
        self._devices: list[_Device] | None = None
        self._event_set: Any = None
        self._last_xid: dict[int, Xid] = {}
        self._lock = threading.RLock()

    def _started(self) -> list[_Device]:
        """Initialize NVML once and cache the device handles."""
        if self._devices is None:
            self.nv.nvmlInit()
            try:
                devices = [self._open(i) for i in range(self.nv.nvmlDeviceGetCount())]
                self._event_set = self._optional(self.nv.nvmlEventSetCreate)
            except self.nv.NVMLError:
                self.nv.nvmlShutdown()
                raise
            for device in devices:
                self._register_xids(device)
            self._devices = devices
        return self._devices

    def _open(self, index: int) -> _Device:
        """Get a GPU's handle and identity; a GPU that will not open has no handle."""
        try:
            handle = self.nv.nvmlDeviceGetHandleByIndex(index)
            uuid = self._optional(self.nv.nvmlDeviceGetUUID, handle)
            name = self._optional(self.nv.nvmlDeviceGetName, handle)
        except self._node_errors:
            raise
        except self.nv.NVMLError:
            return _Device(index)
        return _Device(index, handle, uuid and _text(uuid), name and _text(name))

    def _register_xids(self, device: _Device) -> None:
        """Ask NVML to queue the GPU's XID critical errors; some GPUs do not support it."""
        if self._event_set is not None and device.handle is not None:
            self._optional(
                self.nv.nvmlDeviceRegisterEvents,
                device.handle,
                self.nv.nvmlEventTypeXidCriticalError,
                self._event_set,
            )

    def _optional(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call NVML for one value; None when the GPU cannot give it."""
        try:
            return fn(*args)
        except self._node_errors + self._lost_errors:
            raise
        except self.nv.NVMLError:
            return None

    def _stop(self) -> None:
        """Forget handles after NVML failed, so the next reading starts again."""
        if self._devices is not None:
            # NVML is already broken: a failing shutdown leaves nothing to release.
            with contextlib.suppress(self.nv.NVMLError):
                self.nv.nvmlShutdown()
        self._devices, self._event_set = None, None

    def gpu_count(self) -> int:
        """Number of GPUs NVML reports; 0 when NVML is down."""
        with self._lock:
            try:
                return len(self._started())
            except self.nv.NVMLError:
                return 0

    def read_gpus(self) -> Reading:
        """Read every GPU; NVML failures give a degraded reading, never an exception."""
        with self._lock:
            now = datetime.now(UTC)
            try:
                devices = self._started()
                self._drain_xids(devices, now)
                gpus = tuple(self._read(device) for device in devices)
            except self.nv.NVMLError as exc:
                self._stop()
                return Reading(self.hostname, self.name, now, error=f"{type(exc).__name__}: {exc}")
            return Reading(self.hostname, self.name, now, gpus)

    def _drain_xids(self, devices: list[_Device], now: datetime) -> None:
        """Take the queued XID events without waiting and keep the last per GPU."""
        for _ in range(MAX_EVENTS_PER_DRAIN if self._event_set is not None else 0):
            try:
                event = self.nv.nvmlEventSetWait(self._event_set, 0)
            except self.nv.NVMLError_Timeout:
                return
            except self._node_errors:
                raise
            except self.nv.NVMLError:
                return
            if event.eventType & self.nv.nvmlEventTypeXidCriticalError:
                index = self._event_gpu(event.device, devices)
                if index is not None:
                    self._last_xid[index] = Xid(int(event.eventData), utc_iso(now))

    def _event_gpu(self, handle: Any, devices: list[_Device]) -> int | None:
        """The index of the GPU an event came from."""
        address = _address(handle)
        for device in devices:
            if device.handle is handle or (address is not None and _address(device.handle) == address):
                return device.index
        return None

    def _read(self, device: _Device) -> GpuReading:
        """Read one GPU; a lost GPU gives a reading with lost set and no values."""
        if device.handle is None:
            reopened = self._open(device.index)
            if reopened.handle is None:
                return self._lost(device)
            device.handle, device.uuid, device.name = reopened.handle, reopened.uuid, reopened.name
            self._register_xids(device)
        try:
            return self._values(device)
        except self._lost_errors:
            return self._lost(device)

    def _lost(self, device: _Device) -> GpuReading:
        """The reading of a GPU NVML cannot reach."""
        return GpuReading(
            device.index, device.uuid, device.name, last_xid=self._last_xid.get(device.index), lost=True
        )

    def _values(self, device: _Device) -> GpuReading:
        """Every reading of one reachable GPU."""
        nv, h = self.nv, device.handle
        util = self._optional(nv.nvmlDeviceGetUtilizationRates, h)
        memory = self._optional(nv.nvmlDeviceGetMemoryInfo, h)
        power_mw = self._optional(nv.nvmlDeviceGetPowerUsage, h)
        limit_mw = self._optional(nv.nvmlDeviceGetEnforcedPowerManagementLimit, h)
        return GpuReading(
            index=device.index,
            uuid=device.uuid,
            name=device.name,
            utilization_pct=None if util is None else int(util.gpu),
            memory_used_bytes=None if memory is None else int(memory.used),
            memory_total_bytes=None if memory is None else int(memory.total),
            temperature_c=self._optional(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
            power_draw_w=None if power_mw is None else power_mw / 1000.0,
            power_limit_w=None if limit_mw is None else limit_mw / 1000.0,
            ecc_uncorrectable_volatile=self._optional(
                nv.nvmlDeviceGetTotalEccErrors,
                h,
                nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                nv.NVML_VOLATILE_ECC,
            ),
            last_xid=self._last_xid.get(device.index),
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
        """Write the lease's authorized_keys under the lease root (keys only: sudo and peers unused)."""
        record, changed = self.leases.install(lease_id, gpu_indices, keys, placement)
        account = self.leases.account_dir(lease_id).name
        return InstallResult(lease_id, account, record.gpu_indices, len(keys), changed)

    def revoke_lease(self, lease_id: str) -> RevokeResult:
        """Remove the keys, then kill what runs on the lease's GPUs (first revoke only)."""
        record, changed = self.leases.revoke(lease_id)
        # GPUs another lease now holds are not this lease's to clean.
        gpus = set(record.gpu_indices) - self.leases.active_gpus()
        stopped = self._kill_processes(gpus) if changed else 0
        deadline = time.monotonic() + (self.settle_s if stopped else 0.0)
        while not (clean := self._gpus_clean(gpus)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return RevokeResult(lease_id, processes_stopped=stopped, gpus_clean=clean, changed=changed)

    def installed_leases(self) -> tuple[str, ...]:
        """Ids of the leases whose keys are in."""
        return self.leases.active_leases()

    def _pids_on(self, indices: Iterable[int]) -> set[int] | None:
        """PIDs of compute processes on the given GPUs; None when NVML cannot tell."""
        usage = self.gpu_usage(indices)
        return None if usage is None else {pid for use in usage.values() for pid in use.pids}

    def gpu_usage(self, indices: Iterable[int]) -> dict[int, GpuUse] | None:
        """What holds each of the given GPUs (compute processes, memory used); None when NVML cannot tell."""
        with self._lock:
            try:
                devices = self._started()
                usage: dict[int, GpuUse] = {}
                for i in indices:
                    handle = devices[i].handle if i < len(devices) else None
                    if handle is None:
                        return None
                    pids = frozenset(p.pid for p in self.nv.nvmlDeviceGetComputeRunningProcesses(handle))
                    memory = self._optional(self.nv.nvmlDeviceGetMemoryInfo, handle)
                    usage[i] = GpuUse(pids, None if memory is None else int(memory.used))
                return usage
            except self.nv.NVMLError:
                return None

    def _kill_processes(self, indices: set[int]) -> int:
        """Kill the lease's GPU processes, best effort; returns how many were signalled."""
        stopped = 0
        for pid in sorted(self._pids_on(indices) or ()):
            if pid <= 1 or pid == os.getpid():
                continue
            try:
                self.kill(pid, signal.SIGKILL)
                stopped += 1
            except (ProcessLookupError, PermissionError):
                continue
        return stopped

    def _gpus_clean(self, indices: set[int]) -> bool:
        """Whether no compute process is left on the given GPUs."""
        return self._pids_on(indices) == set()
