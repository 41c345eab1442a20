"""Fixtures of the node agent tests: a served simulated fleet, SSH keys, a fake pynvml."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from nodeagent.backends.simulated import SimulatedFleet
from nodeagent.simulator import start_in_thread
from tests.nodeagent.fakes import HOSTNAMES, TOKEN, FakeNvml, FleetServer
from tests.nodeagent.helpers import openssh_line


@pytest.fixture(scope="session")
def ssh_keys() -> dict[str, str]:
    """One valid public key line of each accepted type, and a too-short RSA key."""
    return {
        "ed25519": openssh_line(ed25519.Ed25519PrivateKey.generate(), "alice@laptop"),
        "ecdsa": openssh_line(ec.generate_private_key(ec.SECP256R1()), "bob@desk"),
        "rsa": openssh_line(rsa.generate_private_key(65537, 2048), "charlie@ci"),
        "rsa1024": openssh_line(rsa.generate_private_key(65537, 1024), "old@box"),
    }


@pytest.fixture
def served_fleet(tmp_path: Path) -> Iterator[FleetServer]:
    """Three simulated nodes served from a background thread, and an authed client."""
    fleet = SimulatedFleet(HOSTNAMES, tmp_path / "leases")
    base_url, stop = start_in_thread(fleet, token=TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(headers=headers, timeout=5.0) as client:
        yield FleetServer(fleet, base_url, tmp_path / "leases", client)
    stop()


@pytest.fixture
def fake_nvml() -> FakeNvml:
    """A healthy fake NVML with eight GPUs."""
    return FakeNvml()


@pytest.fixture
def kills(fake_nvml: FakeNvml) -> tuple[list[tuple[int, int]], Callable[[int, int], None]]:
    """A kill function that ends the fake process on its GPU, and its record."""
    record: list[tuple[int, int]] = []

    def kill(pid: int, signum: int) -> None:
        """Record the signal and remove the process from every fake GPU."""
        record.append((pid, signum))
        for gpu in fake_nvml.gpus:
            if pid in gpu.pids:
                gpu.pids.remove(pid)

    return record, kill
