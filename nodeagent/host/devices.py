"""GPU isolation: who may open each /dev/nvidiaN, and the slice's DeviceAllow= where systemd runs.

A free GPU is root's alone; a lease's GPUs belong to its group. The files shared by every GPU
(/dev/nvidiactl, /dev/nvidia-uvm) stay open to all: CUDA needs them, and they reach no GPU's
memory by themselves (docs/decisions.md says what this leaves out).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from nodeagent.host.errors import host_failed, run
from nodeagent.host.settings import HostSettings

DROP_IN = "50-voltpark-gpus.conf"


def gpu_file(settings: HostSettings, index: int) -> Path:
    """The device file of GPU `index`."""
    return settings.device_dir / f"nvidia{index}"


def count(settings: HostSettings) -> int:
    """How many GPU device files (nvidia0, nvidia1, ...) the device folder holds."""
    return len(
        [
            p
            for p in settings.device_dir.glob("nvidia*")
            if p.name[6:].isdigit() and stat.S_ISCHR(os.lstat(p).st_mode)
        ]
    )


def missing(settings: HostSettings, indices: tuple[int, ...]) -> list[int]:
    """GPUs among `indices` whose device file is not a character device."""
    absent = []
    for index in indices:
        try:
            mode = os.lstat(gpu_file(settings, index)).st_mode
        except FileNotFoundError:
            mode = 0
        if not stat.S_ISCHR(mode):
            absent.append(index)
    return absent


def give(settings: HostSettings, indices: tuple[int, ...], gid: int) -> bool:
    """Hand the GPUs to a lease's group; whether any file changed."""
    return _set_all(settings, indices, gid, settings.lease_device_mode)


def take_back(settings: HostSettings, indices: tuple[int, ...]) -> bool:
    """Return the GPUs to root alone; whether any file changed."""
    return _set_all(settings, indices, 0, settings.free_device_mode)


def _set_all(settings: HostSettings, indices: tuple[int, ...], gid: int, mode: int) -> bool:
    changed = False
    for index in indices:
        changed |= _set(gpu_file(settings, index), gid, mode)
    return changed


def _set(path: Path, gid: int, mode: int) -> bool:
    """Owner root, group `gid`, `mode`, on a character device (never a link put in its place)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISCHR(info.st_mode):
        raise host_failed(f"{path} is not a character device; refusing to change it.")
    if (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, gid, mode):
        return False
    os.chown(path, 0, gid, follow_symlinks=False)
    os.chmod(path, mode)
    return True


def slice_drop_in(settings: HostSettings, uid: int) -> Path:
    """The drop-in of the account's user slice (user-<uid>.slice, which pam_systemd puts logins in)."""
    return settings.systemd_dir / f"user-{uid}.slice.d" / DROP_IN


def drop_in_text(settings: HostSettings, indices: tuple[int, ...]) -> str:
    """DeviceAllow= for the lease's GPUs and the shared devices a CUDA or NCCL job needs."""
    allowed = [f"{gpu_file(settings, i)} rw" for i in indices] + list(settings.shared_devices)
    lines = ["# Written by the Voltpark node agent; removed when the lease ends.", "[Slice]"]
    lines += ["DevicePolicy=closed", *(f"DeviceAllow={entry}" for entry in allowed)]
    return "\n".join(lines) + "\n"


def write_drop_in(settings: HostSettings, uid: int, indices: tuple[int, ...]) -> bool:
    """Write the slice's DeviceAllow= drop-in; whether it changed (systemd reloaded when it runs)."""
    path, text = slice_drop_in(settings, uid), drop_in_text(settings, indices)
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == text:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    _reload(settings)
    return True


def remove_drop_in(settings: HostSettings, uid: int) -> bool:
    """Remove the slice's drop-in; whether there was one."""
    path = slice_drop_in(settings, uid)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    with contextlib.suppress(OSError):
        path.parent.rmdir()
    _reload(settings)
    return True


def _reload(settings: HostSettings) -> None:
    if settings.systemd_runtime.is_dir():
        run(["systemctl", "daemon-reload"])
