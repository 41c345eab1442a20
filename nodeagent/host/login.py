"""What a lease's login shell finds in its home: the GPU and NCCL environment, and for a multi-node
lease its hostfile and its peers in /etc/hosts form (in the home: the node's /etc/hosts is shared)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from nodeagent.protocol import Peer

FOLDER = ".voltpark"
ENV_FILE = (FOLDER, "env.sh")
HOSTFILE = (FOLDER, "hostfile")
HOSTS = (FOLDER, "hosts")
# Put first in ~/.bashrc and ~/.profile: Debian's .bashrc returns early when not interactive, and
# bash reads .bashrc for `ssh node command` too.
HOOK = '[ -r "$HOME/.voltpark/env.sh" ] && . "$HOME/.voltpark/env.sh"\n'
SHELL_FILES = (".bashrc", ".profile")


def env_text(gpu_indices: tuple[int, ...], peers: tuple[Peer, ...], nccl: Iterable[tuple[str, str]]) -> str:
    """The environment file the login shell sources."""
    values = [
        # NVML numbers GPUs in PCI bus order; CUDA must count them the same way.
        ("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
        ("CUDA_VISIBLE_DEVICES", ",".join(str(i) for i in gpu_indices)),
        *nccl,
    ]
    if peers:
        values += [
            ("VOLTPARK_HOSTFILE", "$HOME/.voltpark/hostfile"),
            ("VOLTPARK_NODES", str(len(peers))),
            ("MASTER_ADDR", peers[0].address),
        ]
    lines = ["# Written by the Voltpark node agent for this lease; rewritten when the lease changes."]
    lines += [f"export {name}={_quote(value)}" for name, value in values]
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return f'"{value}"' if value.startswith("$HOME/") else shlex.quote(value)


def hostfile_text(peers: tuple[Peer, ...]) -> str:
    """An MPI/DeepSpeed hostfile: one `<host> slots=<n>` line per node."""
    return "".join(f"{peer.hostname} slots={peer.slots}\n" for peer in peers)


def hosts_text(peers: tuple[Peer, ...]) -> str:
    """The lease's nodes as /etc/hosts lines."""
    return "".join(f"{peer.address} {peer.hostname}\n" for peer in peers)


def hooked(text: str) -> str | None:
    """A shell start-up file with the hook first, or None when it already starts with it."""
    return None if text.startswith(HOOK) else HOOK + text
