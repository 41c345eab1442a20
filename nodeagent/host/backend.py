"""The host backend: a lease's account, keys, GPUs and files on a real node, and their clean end.

Every request first checks everything it can without touching the host (a refusal changes
nothing), then journals what it is about to do, then does each step in a way that can be repeated:
a PUT or DELETE sent again, or an agent restarted half-way, ends in the same state.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from nodeagent.backends.nvml import GpuUse
from nodeagent.host import accounts, devices, homes, leftovers, login, processes
from nodeagent.host.accounts import Account
from nodeagent.host.errors import run
from nodeagent.host.journal import ACTIVE, INSTALLING, LIVE, REVOKED, REVOKING, HostLease, Journal
from nodeagent.host.settings import HostSettings
from nodeagent.model import AgentError, InstallResult, Reading, RevokeResult
from nodeagent.protocol import Peer, account_for_lease

SUDOERS = "# Written by the Voltpark node agent: a whole-node lease.\n{} ALL=(ALL:ALL) NOPASSWD: ALL\n"


class GpuReader(Protocol):
    """What the host backend needs of the NVML reader."""

    hostname: str

    def gpu_count(self) -> int: ...

    def read_gpus(self) -> Reading: ...

    def gpu_usage(self, indices: tuple[int, ...]) -> dict[int, GpuUse] | None: ...


class HostBackend:
    """Readings from NVML; each lease a Linux account with only its GPUs (implements Backend)."""

    name = "host"
    blocking = True

    def __init__(
        self,
        reader: GpuReader,
        settings: HostSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.reader = reader
        self.hostname = reader.hostname
        self.settings = settings or HostSettings()
        self.journal = Journal(self.settings.lease_root)
        self.sleep = sleep
        # One change to the host at a time: accounts, device files and the journal move together.
        self._lock = threading.Lock()

    def gpu_count(self) -> int:
        """Number of GPUs NVML reports; while NVML is down, the GPU device files the node has.

        A key taken away from a live lease must not wait for NVML to come back.
        """
        return self.reader.gpu_count() or devices.count(self.settings)

    def read_gpus(self) -> Reading:
        """Every GPU's reading, from NVML."""
        return self.reader.read_gpus()

    # --- Start, and changes to a live lease

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
        """Make or update the lease's account, keys, GPUs and files; whether anything changed."""
        name = account_for_lease(lease_id)
        with self._lock:
            current = self.journal.get(name)
            self._check_installable(lease_id, name, current, gpu_indices, placement)
            ours = current if current is not None and current.lease_id == lease_id else None
            wanted = HostLease(
                lease_id,
                name,
                gpu_indices,
                keys,
                INSTALLING,
                sudo,
                peers,
                None if ours is None else ours.uid,
                _dropped(ours, keys),
                placement,
            )
            changed = current != wanted.moved(ACTIVE, dropped_keys=())
            if changed:
                self.journal.write(wanted)
            account, host_changed = self._install_account(wanted)
            wanted = wanted if wanted.uid == account.uid else self._journal_uid(wanted, account)
            host_changed |= self._install(wanted, account)
            closed = processes.close_ssh_sessions(account.uid) if wanted.dropped_keys else 0
            if changed or host_changed:
                self.journal.write(wanted.moved(ACTIVE, uid=account.uid, dropped_keys=()))
        return InstallResult(lease_id, name, gpu_indices, len(keys), changed or host_changed, closed)

    def _check_installable(
        self,
        lease_id: str,
        name: str,
        current: HostLease | None,
        gpu_indices: tuple[int, ...],
        placement: int,
    ) -> None:
        """Refuse, before any change, a lease this node must not install."""
        ours = current is not None and current.lease_id == lease_id
        placed_again = ours and current.phase == REVOKED and placement > current.placement  # type: ignore[union-attr]
        if ours and current.phase in (REVOKING, REVOKED) and not placed_again:  # type: ignore[union-attr]
            # A late retry of a start must not give access back after the end; a later placement of
            # the lease (moved away and back before it started) may, once the revoke has finished.
            raise AgentError(409, "lease_revoked", f"Lease {lease_id} has ended on this node.", "lease_id")
        if current is not None and not ours and current.phase in LIVE:
            raise AgentError(
                409, "account_conflict", f"Account {name} belongs to another lease on this node.", "lease_id"
            )
        if not ours and accounts.lookup(name) is not None:
            raise AgentError(
                409,
                "account_conflict",
                f"An account {name} exists on this node and was not made by the agent for this lease.",
                "lease_id",
            )
        self._check_gpus(name, gpu_indices)

    def _check_gpus(self, name: str, gpu_indices: tuple[int, ...]) -> None:
        taken = sorted(set(gpu_indices) & self.journal.gpus_held(besides=name))
        if taken:
            raise AgentError(
                409, "gpu_in_use", f"GPU {taken[0]} is held by another lease on this node.", "gpu_indices"
            )
        absent = devices.missing(self.settings, gpu_indices)
        if absent:
            path = devices.gpu_file(self.settings, absent[0])
            raise AgentError(
                409, "gpu_device_missing", f"GPU {absent[0]} has no device file {path}.", "gpu_indices"
            )

    def _install_account(self, lease: HostLease) -> tuple[Account, bool]:
        s = self.settings
        changed = accounts.ensure_group(s.tenants_group)
        account, made = accounts.create(
            lease.account, home=s.home_root / lease.account, shell=s.shell, tenants_group=s.tenants_group
        )
        return account, changed | made

    def _journal_uid(self, lease: HostLease, account: Account) -> HostLease:
        """Record the new account's uid before it gets keys: a cleanup after a crash needs it."""
        lease = lease.moved(INSTALLING, uid=account.uid)
        self.journal.write(lease)
        return lease

    def _install(self, lease: HostLease, account: Account) -> bool:
        """Every step of a start after the account, each one skipped when already done."""
        s = self.settings
        changed = homes.write(account, (".ssh", "authorized_keys"), "".join(f"{k}\n" for k in lease.keys))
        changed |= self._write_login_files(account, lease)
        changed |= self._write_scratch(account)
        changed |= devices.give(s, lease.gpu_indices, account.gid)
        if len(lease.gpu_indices) < self.gpu_count():
            changed |= devices.write_drop_in(s, account.uid, lease.gpu_indices)
        else:
            changed |= devices.remove_drop_in(s, account.uid)
        changed |= self._write_sudoers(lease)
        return changed

    def _write_login_files(self, account: Account, lease: HostLease) -> bool:
        env = login.env_text(lease.gpu_indices, lease.peers, self.settings.nccl_env)
        changed = homes.write(account, login.ENV_FILE, env, 0o644)
        if lease.peers:
            changed |= homes.write(account, login.HOSTFILE, login.hostfile_text(lease.peers), 0o644)
            changed |= homes.write(account, login.HOSTS, login.hosts_text(lease.peers), 0o644)
        else:
            changed |= homes.remove(account, login.HOSTFILE) | homes.remove(account, login.HOSTS)
        for name in login.SHELL_FILES:
            current = homes.read(account, (name,))
            hooked = login.hooked(current.decode(errors="replace") if current is not None else "")
            if hooked is not None:
                changed |= homes.write(account, (name,), hooked, 0o644)
        return changed

    def _write_scratch(self, account: Account) -> bool:
        if self.settings.scratch_root is None:
            return False
        scratch = self.settings.scratch_root / account.name
        if scratch.is_dir() and not scratch.is_symlink():
            return False
        scratch.mkdir(mode=0o700, parents=False)
        os.chown(scratch, account.uid, account.gid)
        return True

    def _write_sudoers(self, lease: HostLease) -> bool:
        path = self.settings.sudoers_dir / lease.account
        if not lease.sudo:
            return _unlink(path)
        text = SUDOERS.format(lease.account)
        if path.exists() and path.read_text() == text:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.new")  # sudo skips names with a dot
        tmp.write_text(text)
        os.chmod(tmp, 0o440)
        os.replace(tmp, path)
        return True

    # --- The end

    def revoke_lease(self, lease_id: str) -> RevokeResult:
        """Stop everything of the lease, remove its account and files, then check its GPUs are free."""
        name = account_for_lease(lease_id)
        with self._lock:
            current = self.journal.get(name)
            if current is None or current.lease_id != lease_id:
                raise AgentError(404, "unknown_lease", f"This node has no lease {lease_id}.", "lease_id")
            stopped, changed = 0, current.phase != REVOKED
            if changed:
                self.journal.write(current.moved(REVOKING))
                stopped = self._hand_back(current)
                self.journal.write(current.moved(REVOKED, keys=()))
        clean = self._gpus_clean(current.gpu_indices, wait=changed)
        return RevokeResult(lease_id, processes_stopped=stopped, gpus_clean=clean, changed=changed)

    def installed_leases(self) -> tuple[str, ...]:
        """Ids of the leases not (fully) revoked: one half-way through either way is still here."""
        return tuple(sorted(lease.lease_id for lease in self.journal.all() if lease.phase in LIVE))

    def _hand_back(self, lease: HostLease) -> int:
        """Every step of an end, each one skipped when already done; how many processes were stopped."""
        s = self.settings
        account = accounts.lookup(lease.account)
        stopped = 0
        # Once the account is gone its uid may be another lease's: only its own account is signalled.
        if account is not None and account.uid == lease.uid:
            homes.remove(account, (".ssh", "authorized_keys"))
            accounts.lock(account.name)
            _unlink(s.sudoers_dir / lease.account)
            # Linger and jobs first: nothing may start the account's processes again while they stop.
            leftovers.remove_spooled_jobs(s.spool_dirs, account.name, account.uid)
            if s.systemd_runtime.is_dir():
                # The user manager and every session scope, by systemd, before the sweep of /proc.
                run(["loginctl", "terminate-user", str(account.uid)], ok_codes=(0, 1))
            stopped = processes.stop_account(account.uid, grace_s=s.term_grace_s, sleep=self.sleep)
            leftovers.remove_owned(s.tmp_dirs, account.uid)
            devices.remove_drop_in(s, account.uid)
        stopped += self._kill_gpu_processes(lease.gpu_indices)
        devices.take_back(s, lease.gpu_indices)
        accounts.delete_tree(s.home_root / lease.account, parent=s.home_root)
        if s.scratch_root is not None:
            accounts.delete_tree(s.scratch_root / lease.account, parent=s.scratch_root)
        _unlink(s.sudoers_dir / lease.account)
        accounts.remove(lease.account)
        return stopped

    def _kill_gpu_processes(self, indices: tuple[int, ...]) -> int:
        """Kill what NVML still sees on the lease's GPUs (a whole-node lease's root processes)."""
        usage = self.reader.gpu_usage(indices) or {}
        pids = {pid for use in usage.values() for pid in use.pids if pid not in (0, 1, os.getpid())}
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
        return len(pids)

    def _gpus_clean(self, indices: tuple[int, ...], *, wait: bool) -> bool:
        """Whether NVML shows no process on the GPUs and their memory free (waiting up to settle_s)."""
        deadline = time.monotonic() + (self.settings.settle_s if wait else 0.0)
        while not (clean := self._free(indices)) and time.monotonic() < deadline:
            self.sleep(0.1)
        return clean

    def _free(self, indices: tuple[int, ...]) -> bool:
        usage = self.reader.gpu_usage(indices)
        if usage is None:
            return False
        limit = self.settings.clean_memory_bytes
        return all(
            not use.pids and (use.memory_used_bytes is None or use.memory_used_bytes <= limit)
            for use in usage.values()
        )

    # --- Start-up

    def recover(self) -> int:
        """At start: GPUs of live leases to their groups, every other GPU to root; how many changed.

        After a reboot the driver makes the device files afresh, open to everyone.
        """
        with self._lock:
            held: dict[int, int] = {}
            for lease in self.journal.all():
                account = accounts.lookup(lease.account)
                if lease.phase in (INSTALLING, ACTIVE) and account is not None and account.uid == lease.uid:
                    held.update((i, account.gid) for i in lease.gpu_indices)
            changed = 0
            for index in range(self.gpu_count()):
                if index in held:
                    changed += devices.give(self.settings, (index,), held[index])
                else:
                    changed += devices.take_back(self.settings, (index,))
            return changed


def _dropped(current: HostLease | None, keys: tuple[str, ...]) -> tuple[str, ...]:
    """Keys the lease had and this PUT takes away, with those of a PUT cut short before it closed
    the sessions (journalled until then, so a repeated PUT still closes them)."""
    if current is None:
        return ()
    pending = current.dropped_keys if current.phase == INSTALLING else ()
    return tuple(sorted(set(pending) | (set(current.keys) - set(keys))))


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
