"""Real Celery workers and beat as subprocesses on the test database and Redis, for the run-time
tests (tests/clusters/test_runtime_celery.py, test_region_workers.py): `Celery` starts and stops
them, `wait_for` waits for a condition with a deadline. Workers use the solo pool, so that SIGKILL
kills the very process running a sweep."""

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.live import worker_environment

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Celery:
    """Starts and stops worker and beat processes pointed at the test database."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **worker_environment(),
            "LEASE_SWEEP_INTERVAL_S": "1",
            "POLL_INTERVAL_S": "3600",
            "LEASE_CLEANUP_INTERVAL_S": "3600",
            "EMAIL_URL": "dummy://",
            "PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p),
            **env,
        }

    def start(self, role: str, *, queues: list[str] | None = None, name: str = "") -> subprocess.Popen[bytes]:
        """A `worker` (every queue, or only `queues`) or the `beat`."""
        args = {
            "worker": ["worker", "--pool=solo", "--without-mingle", "--without-gossip", "--loglevel=INFO"],
            "beat": ["beat", f"--schedule={self.tmp_path / 'beat-schedule'}", "--loglevel=INFO"],
        }[role]
        if queues:
            args += ["-Q", ",".join(queues)]
        if name:
            args += ["-n", f"{name}@%h"]
        log = open(self.tmp_path / f"{role}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "voltpark", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def worker_logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.tmp_path.glob("worker-*.log"))

    def wait_for_a_sweep(self, count: int = 1) -> None:
        """Until workers have run `count` lease sweeps: started on a busy machine, it may take seconds."""

        def swept() -> bool:
            return len(re.findall(r"leases_enforce\[[^]]+\] succeeded", self.worker_logs())) >= count

        wait_for(swept, 60, "the workers' first lease sweeps")

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in self.tmp_path.glob("*.log"))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
