"""Command line: python -m nodeagent (one real node, or a simulated fleet)."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from nodeagent.backends.nvml import DEFAULT_LEASE_ROOT, NvmlBackend
from nodeagent.backends.simulated import SimulatedFleet, SimulatedNode, simulated_hostnames
from nodeagent.server import Server, node_server, resolve_token_sha256
from nodeagent.simulator import fleet_server, simulated_node_server

log = logging.getLogger("nodeagent")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line; the token may also come from the environment."""
    parser = argparse.ArgumentParser(prog="python -m nodeagent", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--simulate", action="store_true", help="serve many simulated nodes")
    mode.add_argument("--backend", choices=("nvml", "simulated"), default="nvml")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1 simulated, else 0.0.0.0)")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--token", default=os.environ.get("NODEAGENT_TOKEN"))
    parser.add_argument("--token-sha256", default=os.environ.get("NODEAGENT_TOKEN_SHA256"))
    parser.add_argument("--lease-root", type=Path, help="where lease authorized_keys live")
    parser.add_argument("--hostname", default=socket.gethostname(), help="single-node name")
    parser.add_argument("--nodes", type=int, help="simulated nodes (default 10, or the file's)")
    parser.add_argument("--hostname-prefix", default="sim-node-")
    parser.add_argument("--hostnames-file", type=Path, help="simulated hostnames, one a line")
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not (args.token or args.token_sha256):
        parser.error("give --token-sha256 (or NODEAGENT_TOKEN_SHA256), or --token")
    return args


def fleet_hostnames(args: argparse.Namespace) -> list[str]:
    """Hostnames of the simulated fleet: from the file, else prefix and count."""
    if args.hostnames_file is None:
        return simulated_hostnames(args.hostname_prefix, args.nodes or 10)
    lines = args.hostnames_file.read_text().splitlines()
    names = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return names[: args.nodes] if args.nodes else names


def default_lease_root(simulated: bool) -> Path:
    """The real lease root on a node; a temporary folder, removed at exit, for a simulation."""
    if simulated:
        root = Path(tempfile.mkdtemp(prefix="nodeagent-leases-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        return root
    return DEFAULT_LEASE_ROOT


def build_server(args: argparse.Namespace) -> tuple[Server, str]:
    """The server the arguments ask for, and a line saying what it serves."""
    simulated = args.simulate or args.backend == "simulated"
    lease_root = args.lease_root or default_lease_root(simulated)
    host = args.host or ("127.0.0.1" if simulated else "0.0.0.0")
    digest = resolve_token_sha256(args.token, args.token_sha256)
    if args.simulate:
        fleet = SimulatedFleet(fleet_hostnames(args), lease_root, gpus_per_node=args.gpus_per_node)
        server = fleet_server(fleet, digest, host, args.port)
        return server, f"{len(fleet.nodes)} simulated nodes (leases in {lease_root})"
    what = f"{args.backend} node {args.hostname} (leases in {lease_root})"
    if args.backend == "simulated":
        node = SimulatedNode(args.hostname, lease_root, gpus=args.gpus_per_node)
        return simulated_node_server(node, digest, host, args.port), what
    return node_server(NvmlBackend(args.hostname, lease_root), digest, host, args.port), what


async def run(args: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM."""
    server, what = build_server(args)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    await server.start()
    log.info("serving %s at %s", what, server.url)
    try:
        await stopped.wait()
    finally:
        await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of python -m nodeagent."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(run(args))
    except (OSError, ValueError) as exc:
        print(f"nodeagent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
