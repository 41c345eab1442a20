"""The installed `voltpark` command against a live platform: gunicorn and a real Celery worker with
beat on the test database, and the node agents simulated over loopback HTTP. It books 8 GPUs with
--wait (the sweeper starts the lease and installs the key), sees the lease active, and releases it."""

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from accounts.services.ssh_keys import ssh_key_add
from accounts.services.tokens import api_token_create
from clusters.choices import LeaseState
from clusters.models import Lease, Node
from clusters.services.fleet import fleet_seed
from nodeagent.backends.simulated import SimulatedFleet
from nodeagent.protocol import account_for_lease
from nodeagent.simulator import start_in_thread
from tests.accounts.helpers import ALICE_KEY
from tests.browser.harness import start_worker, stop_worker
from tests.factories import MembershipFactory
from tests.live import free_port, worker_environment

pytestmark = pytest.mark.slow

AGENT_TOKEN = "cli-live-agent-token"
VOLTPARK = Path(sys.executable).parent / "voltpark"
START_TIMEOUT_S = 30
WAIT_S = 30


@dataclass(frozen=True)
class LivePlatform:
    """The live server's URL and the simulated agents behind its fleet."""

    url: str
    agents: SimulatedFleet


@pytest.fixture
def live_api(transactional_db: None, tmp_path: Path) -> Iterator[LivePlatform]:
    """gunicorn (1 worker) and a Celery worker with beat on the test database; 6 simulated nodes."""
    agent_port = free_port("CLI_AGENT_PORTS", "23760-23799")
    fleet_seed(nodes=6, agent_base=f"http://127.0.0.1:{agent_port}", agent_token=AGENT_TOKEN)
    agents = SimulatedFleet(list(Node.objects.values_list("hostname", flat=True)), tmp_path / "leases")
    _, stop_agents = start_in_thread(agents, token=AGENT_TOKEN, port=agent_port)
    web = _start_gunicorn(free_port("CLI_TEST_PORTS", "23710-23759"), tmp_path / "gunicorn.log")
    env = {"LEASE_SWEEP_INTERVAL_S": "1", "POLL_INTERVAL_S": "1", "EMAIL_URL": "dummy://"}
    worker = start_worker(f"cli-{uuid.uuid4().hex[:8]}@localhost", {"beat": True, "env": env}, tmp_path)
    try:
        yield LivePlatform(web.url, agents)
    finally:
        stop_worker(worker)
        web.stop()
        stop_agents()


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _start_gunicorn(port: int, log_path: Path) -> Gunicorn:
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
    command += [
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "4",
        "voltpark.wsgi:application",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=worker_environment(), stdout=log, stderr=subprocess.STDOUT
        )
    web = Gunicorn(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{web.url}/healthz", timeout=1).status_code == 200:
                return web
        except httpx.TransportError:
            time.sleep(0.2)
    web.stop()
    raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text()[-3000:]}")


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_S}s waiting for {what}")
        time.sleep(0.2)


def test_the_cli_books_with_wait_sees_the_lease_active_and_releases_it(
    live_api: LivePlatform, tmp_path
) -> None:
    nora = MembershipFactory.create(user__email="nora@nebula.example", organization__gpu_quota=16).user
    ssh_key_add(user=nora, name="laptop", public_key=ALICE_KEY)
    token = api_token_create(user=nora, organization=nora.memberships.get().organization, name="cli").secret
    env = {
        "VOLTPARK_URL": live_api.url,
        "VOLTPARK_TOKEN": token,
        "VOLTPARK_CONFIG": str(tmp_path / "none.toml"),
        # The client of this checkout (the installed script may come from another one).
        "PYTHONPATH": str(Path(settings.BASE_DIR) / "clients" / "python" / "src"),
    }

    def voltpark(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VOLTPARK), *argv], env=env, capture_output=True, text=True, timeout=90)

    offered = voltpark("offerings", "--gpus", "8", "--hours", "2", "--region", "us-tx-1")
    assert offered.returncode == 0, offered.stderr
    assert offered.stdout.splitlines()[1].split()[0] == "us-tx-1" and "Book the first:" in offered.stdout
    # Nora is a member: the balance is for owners and finance members, said as the API says it.
    balance = voltpark("balance")
    assert (balance.returncode, balance.stderr) == (
        4,
        "Your role in this organization does not allow this.\n",
    )

    booked = voltpark("book", "--gpus", "8", "--region", "us-tx-1", "--wait", "--timeout", "60")
    assert booked.returncode == 0, booked.stderr
    lease = Lease.objects.get(organization__memberships__user=nora)
    assert lease.state == LeaseState.ACTIVE
    account = account_for_lease(str(lease.public_id))
    node = lease.allocations.first().node.hostname
    assert booked.stdout.endswith(
        f"Lease {str(lease.public_id)[:8]} is active. Log in with:\n  ssh {account}@{node}\n"
    )
    assert "Waiting for lease" in booked.stderr  # the progress lines, on stderr
    keys = live_api.agents.lease_root / node / account / ".ssh" / "authorized_keys"
    assert keys.read_text().strip() == ALICE_KEY

    listed = voltpark("leases")
    assert listed.stdout.splitlines()[1].split()[:3] == [str(lease.public_id)[:8], "active", "8"]

    released = voltpark("release", str(lease.public_id)[:8])
    assert released.returncode == 0, released.stderr
    assert released.stdout.startswith(f"Released lease {str(lease.public_id)[:8]}: billing stopped ")
    wait_until(
        lambda: Lease.objects.get(pk=lease.pk).state == LeaseState.ENDED, "the sweeper to end the lease"
    )
    wait_until(lambda: not keys.exists(), "the agent to remove the lease's account")

    shown = voltpark("lease", str(lease.public_id), "--json")
    assert shown.returncode == 0
    assert shown.stdout and '"state": "ended"' in shown.stdout and '"ssh_command": null' in shown.stdout
