"""Where the host backend works on a node and how long it waits; the defaults fit a Debian node."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class HostSettings:
    """Paths and timings of the host backend (tests point every path at folders of their own)."""

    # The journal: one root-only JSON file per lease account.
    lease_root: Path = Path("/var/lib/voltpark/leases")
    home_root: Path = Path("/home")
    # A per-lease folder on the node's local NVMe, made at start and deleted at the end (None: none).
    scratch_root: Path | None = None
    # Where /dev/nvidiaN live; tests make their own device nodes with mknod.
    device_dir: Path = Path("/dev")
    # Shared writable folders where files the account left are deleted at the end.
    tmp_dirs: tuple[Path, ...] = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
    # cron's crontabs (one file per user), at's jobs (files owned by the user), and systemd-logind's
    # linger flags (one file per user: a user manager that outlives the last log-in).
    spool_dirs: tuple[Path, ...] = (
        Path("/var/spool/cron/crontabs"),
        Path("/var/spool/cron/atjobs"),
        Path("/var/lib/systemd/linger"),
    )
    sudoers_dir: Path = Path("/etc/sudoers.d")
    # Drop-ins of the accounts' user slices; applied only where systemd runs (systemd_runtime exists).
    systemd_dir: Path = Path("/etc/systemd/system")
    systemd_runtime: Path = Path("/run/systemd/system")
    # Every lease account is also in this group, which the shipped sshd configuration matches.
    tenants_group: str = "voltpark-tenants"
    shell: str = "/bin/bash"
    # A GPU no lease holds is root's alone; a lease's GPUs are root:<lease group> 0660.
    free_device_mode: int = 0o600
    lease_device_mode: int = 0o660
    # TERM, then KILL after this long; then wait this long at most for NVML to see the GPUs free.
    term_grace_s: float = 2.0
    settle_s: float = 2.0
    # A GPU with no process still shows the driver's own reservation; above this it is not free.
    clean_memory_bytes: int = 1 << 30
    # NCCL defaults for the fabric, exported by every lease's login shell (override per site).
    nccl_env: tuple[tuple[str, str], ...] = (
        ("NCCL_IB_DISABLE", "0"),
        ("NCCL_IB_HCA", "mlx5"),
        ("NCCL_SOCKET_IFNAME", "^lo,docker"),
    )
    # Devices a partial-node lease's slice may use besides its GPUs (systemd DeviceAllow= entries).
    shared_devices: tuple[str, ...] = field(
        default=(
            "/dev/nvidiactl rw",
            "/dev/nvidia-uvm rw",
            "/dev/nvidia-uvm-tools rw",
            "/dev/nvidia-modeset rw",
            "char-nvidia-caps r",
            "char-infiniband_verbs rw",
            "/dev/infiniband/rdma_cm rw",
            "char-pts rw",
            "/dev/tty rw",
            "/dev/ptmx rw",
            "/dev/fuse rw",
        )
    )
