"""Benchmark: one poller (httpx.AsyncClient) reads every node of a simulator process.

python -m nodeagent.bench --nodes 3000 --rounds 5 --concurrency 64 --clients 8
Starts `python -m nodeagent --simulate` as a child process, GETs /v1/gpus of
every node once per round, and prints the wall time of each round and the CPU
time the simulator spent. httpx is a platform dependency, not an agent one.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nodeagent.backends.simulated import simulated_hostnames


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_simulator(nodes: int, token: str, lease_root: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start the simulator process and wait until it answers."""
    port = free_port()
    command = [sys.executable, "-m", "nodeagent", "--simulate", "--nodes", str(nodes), "--port", str(port)]
    command += ["--lease-root", lease_root, "--log-level", "WARNING"]
    agent = subprocess.Popen(command, env={**os.environ, "NODEAGENT_TOKEN": token})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return agent, port
        time.sleep(0.05)
    agent.kill()
    raise RuntimeError("the simulator did not start")


async def poll_rounds(
    port: int, token: str, nodes: int, rounds: int, concurrency: int, clients: int
) -> list[float]:
    """Wall seconds of each round of GETs of every node's /v1/gpus."""
    import httpx

    urls = [f"http://127.0.0.1:{port}/nodes/{h}/v1/gpus" for h in simulated_hostnames("sim-node-", nodes)]
    per_client = max(1, concurrency // clients)
    # httpcore's pool scans every connection for every queued request, so one
    # client with many connections costs more CPU than several small ones.
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    headers = {"Authorization": f"Bearer {token}"}
    pool = [httpx.AsyncClient(limits=limits, headers=headers, timeout=30) for _ in range(clients)]
    gates = [asyncio.Semaphore(per_client) for _ in range(clients)]

    async def one(n: int) -> int:
        """GET one node and check it answered with GPUs."""
        async with gates[n % clients]:
            response = await pool[n % clients].get(urls[n])
            response.raise_for_status()
            return len(response.json()["gpus"])

    times = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            counts = await asyncio.gather(*(one(n) for n in range(nodes)))
            times.append(time.perf_counter() - started)
            assert set(counts) == {8}
    finally:
        for client in pool:
            await client.aclose()
    return times


async def poll_rounds_aiohttp(
    port: int, token: str, nodes: int, rounds: int, concurrency: int
) -> list[float]:
    """The same rounds with aiohttp's client, to tell the simulator's cost from httpx's."""
    import aiohttp

    urls = [f"http://127.0.0.1:{port}/nodes/{h}/v1/gpus" for h in simulated_hostnames("sim-node-", nodes)]
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(url: str) -> int:
            """GET one node and check it answered with GPUs."""
            async with session.get(url) as response:
                response.raise_for_status()
                return len((await response.json())["gpus"])

        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            counts = await asyncio.gather(*(one(url) for url in urls))
            times.append(time.perf_counter() - started)
            assert set(counts) == {8}
        return times


def parse_args() -> argparse.Namespace:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight in all")
    parser.add_argument("--clients", type=int, default=8, help="httpx.AsyncClient instances")
    parser.add_argument("--client", choices=("httpx", "aiohttp"), default="httpx")
    return parser.parse_args()


def run_rounds(args: argparse.Namespace, port: int, token: str) -> list[float]:
    """Poll with the chosen client library."""
    if args.client == "aiohttp":
        return asyncio.run(poll_rounds_aiohttp(port, token, args.nodes, args.rounds, args.concurrency))
    if importlib.util.find_spec("sniffio") is None:
        # httpcore retries `import sniffio` on every lock operation when it is
        # missing, a failed sys.path search each time; this caches the miss.
        print("sniffio is not installed: caching its ImportError for httpcore", file=sys.stderr)
        sys.modules["sniffio"] = None  # type: ignore[assignment]
    return asyncio.run(poll_rounds(port, token, args.nodes, args.rounds, args.concurrency, args.clients))


def main() -> None:
    """Run the benchmark and print its numbers."""
    args = parse_args()
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as lease_root:
        agent, port = start_simulator(args.nodes, token, lease_root)
        try:
            before, client_before = cpu_seconds(agent.pid), time.process_time()
            times = run_rounds(args, port, token)
            spent, client = cpu_seconds(agent.pid) - before, time.process_time() - client_before
        finally:
            agent.terminate()
            agent.wait(timeout=10)
    for n, seconds in enumerate(times, 1):
        print(f"round {n}: {args.nodes} GETs in {seconds:.2f} s ({args.nodes / seconds:.0f}/s)")
    total = args.nodes * args.rounds
    print(f"simulator CPU: {spent:.2f} s for {total} GETs ({spent / total * 1000:.3f} ms each)")
    print(
        f"poller ({args.client}) CPU: {client:.2f} s for {total} GETs ({client / total * 1000:.3f} ms each)"
    )


if __name__ == "__main__":
    main()
