"""A real host for the host backend's tests: folders, device nodes, a tenants group, sshd, the agent.

Everything it makes carries a prefix unique to the run (accounts `vp-<run>…`, group `vpt-<run>`),
so parallel runs on one machine never touch each other's, and `close()` removes all of it even
after a failed test.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from nodeagent.backends.nvml import NvmlBackend
from nodeagent.host import processes
from nodeagent.host.backend import HostBackend
from nodeagent.host.settings import HostSettings
from nodeagent.protocol import account_for_lease
from nodeagent.server import start_node_in_thread
from tests.live import free_port
from tests.nodeagent.fakes import TOKEN, DeviceFileNvml

REPO = Path(__file__).resolve().parents[2]
SHIPPED_SSHD = REPO / "deploy" / "node" / "sshd_config.d" / "voltpark.conf"
SHIPPED_TENANTS_GROUP = "voltpark-tenants"
GPUS = 8


@dataclass
class HostUnderTest:
    """One node's worth of host state in a temporary folder, and the agent serving it."""

    root: Path
    run: str
    settings: HostSettings
    nvml: DeviceFileNvml
    backend: HostBackend
    url: str
    client: httpx.Client
    keys: dict[str, Path] = field(default_factory=dict)
    sshd: subprocess.Popen[bytes] | None = None
    ssh_port: int = 0
    _stop_agent: object = None
    _serial: int = 0
    _sessions: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def device_dir(self) -> Path:
        return self.settings.device_dir

    def lease_id(self) -> str:
        """A lease id whose account is new to this run: vp-<run><nn>le."""
        self._serial += 1
        return f"{self.run}{self._serial:02d}-lease"

    def put(self, lease_id: str, **body: object) -> httpx.Response:
        """PUT the lease on the agent over HTTP."""
        return self.client.put(f"{self.url}/v1/leases/{lease_id}", json=body)

    def delete(self, lease_id: str) -> httpx.Response:
        """DELETE the lease on the agent over HTTP."""
        return self.client.delete(f"{self.url}/v1/leases/{lease_id}")

    def public_key(self, person: str) -> str:
        """The OpenSSH public key line of a test person's key pair."""
        return self.keys[person].with_suffix(".pub").read_text().strip()

    def ssh(
        self, lease_id: str, person: str, command: str, timeout: float = 20
    ) -> subprocess.CompletedProcess[str]:
        """Log in as the lease's account with the person's key (BatchMode: a key or nothing)."""
        return subprocess.run(
            self._ssh_command(lease_id, person, command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ssh_in_background(self, lease_id: str, person: str, command: str) -> subprocess.Popen[str]:
        """An SSH session left open; the caller reads its output and waits for it."""
        session = subprocess.Popen(
            self._ssh_command(lease_id, person, command),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._sessions.append(session)
        return session

    def _ssh_command(self, lease_id: str, person: str, command: str) -> list[str]:
        return [
            "ssh", "-F", "/dev/null", "-p", str(self.ssh_port), "-i", str(self.keys[person]),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
            f"{account_for_lease(lease_id)}@127.0.0.1", command,
        ]  # fmt: skip

    def accounts(self) -> list[str]:
        """Accounts of this run on the system."""
        return sorted(entry.pw_name for entry in pwd.getpwall() if entry.pw_name.startswith(f"vp-{self.run}"))

    def groups(self) -> list[str]:
        """Groups of this run on the system (the lease groups and the tenants group)."""
        return sorted(g.gr_name for g in grp.getgrall() if self.run in g.gr_name)

    def device(self, index: int) -> tuple[int, int, int]:
        """Owner, group and mode of GPU `index`'s device file."""
        info = os.lstat(self.device_dir / f"nvidia{index}")
        return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)

    def state(self) -> dict[str, object]:
        """Everything the agent could change on the host, to compare before and after a refusal."""
        return {
            "accounts": self.accounts(),
            "groups": self.groups(),
            "files": sorted(
                (str(path.relative_to(self.root)), os.lstat(path).st_mode, os.lstat(path).st_uid)
                for path in self.root.rglob("*")
                if not path.is_relative_to(self.root / "sshd")
            ),
        }

    def close(self) -> None:
        """Stop sshd and the agent, remove every account, group and file of the run."""
        for session in self._sessions:
            session.kill()
            session.wait()
        if self.sshd is not None:
            self.sshd.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.sshd.wait(5)
        self.client.close()
        if callable(self._stop_agent):
            self._stop_agent()
        for name in self.accounts():
            processes.stop_account(pwd.getpwnam(name).pw_uid, grace_s=0)
            subprocess.run(["userdel", name], capture_output=True, check=False)
        for name in self.groups():
            subprocess.run(["groupdel", name], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def make_host(*, with_sshd: bool) -> HostUnderTest:
    """A host with its own folders, eight GPU device nodes, an agent over HTTP and maybe sshd."""
    run = secrets.token_hex(4)
    root = Path(tempfile.mkdtemp(prefix=f"vp-host-{run}-"))
    os.chmod(root, 0o755)
    settings = _settings(root, run)
    nvml = DeviceFileNvml(settings.device_dir, GPUS)
    backend = HostBackend(NvmlBackend("host-test-node", root / "unused", nvml=nvml), settings)
    backend.recover()  # as the agent does at start: the free GPUs become root's alone
    url, stop = start_node_in_thread(backend, token=TOKEN)
    client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30.0)
    host = HostUnderTest(root, run, settings, nvml, backend, url, client, _stop_agent=stop)
    try:
        _make_keys(host)
        if with_sshd:
            _start_sshd(host)
    except BaseException:
        host.close()
        raise
    return host


def _settings(root: Path, run: str) -> HostSettings:
    for name, mode in (
        ("home", 0o755),
        ("leases", 0o700),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("scratch", 0o755),
    ):
        (root / name).mkdir()
        os.chmod(root / name, mode)
    (root / "spool").mkdir()
    os.chmod(root / "spool", 0o1777)
    for index in range(GPUS):
        # Character devices with /dev/null's numbers: opening one works, its mode is what we test.
        os.mknod(root / "dev" / f"nvidia{index}", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return HostSettings(
        lease_root=root / "leases",
        home_root=root / "home",
        scratch_root=root / "scratch",
        device_dir=root / "dev",
        tmp_dirs=(root / "tmp",),
        spool_dirs=(root / "spool",),
        sudoers_dir=root / "sudoers.d",
        systemd_dir=root / "systemd",
        systemd_runtime=root / "no-systemd-here",
        tenants_group=f"vpt-{run}",
        term_grace_s=0.5,
        settle_s=1.0,
    )


def _make_keys(host: HostUnderTest) -> None:
    keys = host.root / "keys"
    keys.mkdir(mode=0o700)
    for person in ("alice", "bob", "charlie"):
        path = keys / person
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{person}@test", "-f", str(path)],
            check=True,
        )
        host.keys[person] = path


def _start_sshd(host: HostUnderTest) -> None:
    """sshd on a loopback port with the shipped settings, letting in only this run's tenants."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        raise RuntimeError("sshd is not installed: apt-get install openssh-server (.ci/run does)")
    folder = host.root / "sshd"
    folder.mkdir(mode=0o700)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host_key")], check=True
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    host.ssh_port = free_port("HOST_SSH_TEST_PORTS", "31400-31449")
    group = host.settings.tenants_group
    config = folder / "sshd_config"
    config.write_text(
        f"Port {host.ssh_port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"PidFile {folder / 'sshd.pid'}\nAllowGroups {group}\n"
        + SHIPPED_SSHD.read_text().replace(SHIPPED_TENANTS_GROUP, group)
    )
    with open(folder / "log", "wb") as log:
        # -D: in the foreground, so the test holds its process; -e: its log to the file.
        host.sshd = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if host.sshd.poll() is not None:
            raise RuntimeError(f"sshd exited: {(folder / 'log').read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", host.ssh_port), timeout=1):
            return
        time.sleep(0.05)
    host.sshd.send_signal(signal.SIGTERM)
    raise RuntimeError("sshd did not listen within 10 s")
