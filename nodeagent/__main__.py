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
from nodeagent.host.backend import HostBackend
from nodeagent.host.settings import HostSettings
from nodeagent.server import Server, node_server, resolve_token_sha256
from nodeagent.simulator import fleet_server, simulated_node_server

log = logging.getLogger("nodeagent")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line; the token may also come from the environment."""
    parser = argparse.ArgumentParser(prog="python -m nodeagent", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--simulate", action="store_true", help="serve many simulated nodes")
    mode.add_argument("--backend", choices=("host", "nvml", "simulated"), default="nvml")
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
    host = parser.add_argument_group("host backend (lease accounts on this machine; run as root)")
    host.add_argument("--home-root", type=Path, default=HostSettings.home_root)
    host.add_argument("--scratch-root", type=Path, help="per-lease scratch folders (default: none)")
    host.add_argument("--device-dir", type=Path, default=HostSettings.device_dir)
    host.add_argument("--tenants-group", default=HostSettings.tenants_group)
    host.add_argument(
        "--nccl-env", action="append", default=[], metavar="NAME=VALUE", help="replaces the NCCL defaults"
    )
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
    reader = NvmlBackend(args.hostname, lease_root)
    if args.backend == "host":
        backend = HostBackend(reader, host_settings(args, lease_root))
        log.info("device files of %d GPUs set to their leases at start", backend.recover())
        return node_server(backend, digest, host, args.port), what
    return node_server(reader, digest, host, args.port), what


def host_settings(args: argparse.Namespace, lease_root: Path) -> HostSettings:
    """The host backend's settings from the command line."""
    nccl = tuple(tuple(item.split("=", 1)) for item in args.nccl_env)
    if any(len(pair) != 2 or not pair[0] for pair in nccl):
        raise ValueError("--nccl-env takes NAME=VALUE")
    return HostSettings(
        lease_root=lease_root,
        home_root=args.home_root,
        scratch_root=args.scratch_root,
        device_dir=args.device_dir,
        tenants_group=args.tenants_group,
        **({"nccl_env": nccl} if nccl else {}),  # type: ignore[arg-type]
    )


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
