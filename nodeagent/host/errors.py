"""The refusal of a host step that failed: the agent answers 500 and the platform retries."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from nodeagent.model import AgentError


def host_failed(detail: str) -> AgentError:
    """A change to the host that did not happen; repeating the request resumes from the journal."""
    return AgentError(500, "host_step_failed", detail)


def run(command: Sequence[str], *, ok_codes: tuple[int, ...] = (0,)) -> int:
    """Run a host command (useradd, userdel, ...); its exit status, or a refusal quoting stderr."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise host_failed(f"{command[0]} could not run: {error}") from None
    if done.returncode not in ok_codes:
        raise host_failed(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[:300]}")
    return done.returncode
