"""python -m nodeagent: arguments, the hostnames file, and a real start and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from nodeagent.__main__ import build_server, fleet_hostnames, host_settings, parse_args
from nodeagent.app import RESOLVER_KEY
from nodeagent.bench import free_port
from nodeagent.host.backend import HostBackend

REPO = Path(__file__).resolve().parents[2]


def test_it_will_not_start_without_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("NODEAGENT_TOKEN", raising=False)
    monkeypatch.delenv("NODEAGENT_TOKEN_SHA256", raising=False)
    with pytest.raises(SystemExit):
        parse_args(["--simulate"])
    assert "--token-sha256" in capsys.readouterr().err


def test_it_takes_the_token_hash_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODEAGENT_TOKEN_SHA256", "ab" * 32)
    assert parse_args(["--backend", "nvml"]).token_sha256 == "ab" * 32


def test_hostnames_come_from_the_prefix_and_count() -> None:
    args = parse_args(["--simulate", "--nodes", "3", "--hostname-prefix", "sim-", "--token", "t"])
    assert fleet_hostnames(args) == ["sim-0001", "sim-0002", "sim-0003"]


def test_hostnames_come_from_the_file_skipping_blanks_and_comments(tmp_path: Path) -> None:
    listing = tmp_path / "hosts.txt"
    listing.write_text("# seeded fleet\ntx1-c01-n001\n\n  tx1-c01-n002 \nva1-c01-n001\n")
    args = parse_args(["--simulate", "--hostnames-file", str(listing), "--token", "t"])
    assert fleet_hostnames(args) == ["tx1-c01-n001", "tx1-c01-n002", "va1-c01-n001"]
    limited = parse_args(["--simulate", "--hostnames-file", str(listing), "--nodes", "1", "--token", "t"])
    assert fleet_hostnames(limited) == ["tx1-c01-n001"]


def test_the_simulator_process_serves_the_file_hostnames_and_stops_on_sigterm(tmp_path: Path) -> None:
    listing, port = tmp_path / "hosts.txt", free_port()
    listing.write_text("tx1-c01-n001\ntx1-c01-n002\n")
    command = [sys.executable, "-m", "nodeagent", "--simulate", "--hostnames-file", str(listing)]
    command += ["--port", str(port), "--lease-root", str(tmp_path / "leases")]
    env = {**os.environ, "NODEAGENT_TOKEN": "cli-token"}
    agent = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/nodes/tx1-c01-n002/v1/gpus"
        body = _poll(url, {"Authorization": "Bearer cli-token"})
        assert body["node"] == "tx1-c01-n002" and len(body["gpus"]) == 8
    finally:
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=10)
    assert agent.returncode == 0
    assert "serving 2 simulated nodes" in stderr


def _poll(url: str, headers: dict[str, str]) -> dict:
    """GET the URL until the freshly started agent answers."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return httpx.get(url, headers=headers).json()
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_the_host_backend_takes_its_folders_and_nccl_defaults_from_the_command_line(tmp_path: Path) -> None:
    args = parse_args(
        ["--backend", "host", "--token", "t", "--home-root", str(tmp_path / "home"),
         "--scratch-root", str(tmp_path / "scratch"), "--tenants-group", "gpu-tenants",
         "--nccl-env", "NCCL_SOCKET_IFNAME=bond0", "--nccl-env", "NCCL_IB_HCA=mlx5_0,mlx5_1"]
    )  # fmt: skip
    settings = host_settings(args, tmp_path / "leases")
    assert (settings.home_root, settings.scratch_root, settings.tenants_group) == (
        tmp_path / "home",
        tmp_path / "scratch",
        "gpu-tenants",
    )
    assert settings.nccl_env == (("NCCL_SOCKET_IFNAME", "bond0"), ("NCCL_IB_HCA", "mlx5_0,mlx5_1"))
    assert (
        host_settings(parse_args(["--backend", "host", "--token", "t"]), tmp_path).nccl_env[0][0]
        == "NCCL_IB_DISABLE"
    )
    with pytest.raises(ValueError, match="NAME=VALUE"):
        host_settings(parse_args(["--backend", "host", "--token", "t", "--nccl-env", "=x"]), tmp_path)


def test_the_host_backend_is_what_a_real_node_serves_with_backend_host(tmp_path: Path) -> None:
    args = parse_args(["--backend", "host", "--token", "t", "--lease-root", str(tmp_path / "leases"),
                       "--device-dir", str(tmp_path / "dev"), "--hostname", "tx1-c01-n001"])  # fmt: skip
    server, what = build_server(args)
    backend = server.runner.app[RESOLVER_KEY](None)  # type: ignore[arg-type]
    assert isinstance(backend, HostBackend) and backend.settings.device_dir == tmp_path / "dev"
    assert (backend.name, backend.hostname, what) == (
        "host",
        "tx1-c01-n001",
        f"host node tx1-c01-n001 (leases in {tmp_path / 'leases'})",
    )
