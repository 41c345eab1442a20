"""Every process of a lease's account, found in /proc and stopped: TERM, then KILL after a grace.

A process counts as the account's when any of its user ids (real, effective, saved, filesystem)
is the account's, or when its login uid is (set by pam_loginuid at log-in and kept through sudo,
so a whole-node lease's root processes started from its session are found too).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")
# The per-connection process of sshd, run as the user (named sshd-session from OpenSSH 9.8).
SSHD_NAMES = ("sshd", "sshd-session")
# Rounds of STOP and KILL: a process forking as fast as it can is frozen before it is killed.
KILL_ROUNDS = 50


def account_pids(uid: int) -> set[int]:
    """Live processes of the account (zombies hold nothing and are their parent's to reap)."""
    me = os.getpid()
    return {pid for pid in _pids() if pid not in (1, me) and _belongs(pid, uid)}


def _pids() -> list[int]:
    return [int(entry.name) for entry in os.scandir(PROC) if entry.name.isdigit()]


def _belongs(pid: int, uid: int) -> bool:
    try:
        status = (PROC / str(pid) / "status").read_text()
        loginuid = (PROC / str(pid) / "loginuid").read_text().strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("State", "").strip().startswith(("Z", "X")):
        return False
    uids = {int(value) for value in fields.get("Uid", "").split()}
    return uid in uids or loginuid == str(uid)


def stop_account(uid: int, *, grace_s: float, sleep: Callable[[float], None] = time.sleep) -> int:
    """TERM every process of the account, KILL what is left after `grace_s`; how many there were."""
    seen = account_pids(uid)
    _signal(seen, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    left = account_pids(uid)
    while left and time.monotonic() < deadline:
        sleep(0.05)
        left = account_pids(uid)
    for _ in range(KILL_ROUNDS):
        if not left:
            break
        seen |= left
        _signal(left, signal.SIGSTOP)
        _signal(left, signal.SIGKILL)
        sleep(0.02)
        left = account_pids(uid)
    return len(seen)


def close_ssh_sessions(uid: int) -> int:
    """End every open SSH connection of the account (its sshd session processes); how many.

    sshd does not say which key a connection used, so taking a key away closes them all; holders
    of the kept keys reconnect, and what they left running (tmux, nohup) is not touched.
    """
    sessions = {pid for pid in account_pids(uid) if _command(pid) in SSHD_NAMES}
    _signal(sessions, signal.SIGTERM)
    return len(sessions)


def _command(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _signal(pids: set[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            continue
