"""The soak's platform: every process it runs, started, killed and restarted by bench/soak.py.

Its own PostgreSQL cluster (the machine's `initdb`/`pg_ctl`, on a port of its own, so restarting it
touches nobody else's server) and its own `redis-server`; the simulated fleet (`python -m nodeagent
--simulate`); gunicorn; two Celery workers per region on that region's queues, a worker for the
shared queues, and beat. Each process runs in a session of its own, so a SIGKILL takes its children
with it, as a machine going down would.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AGENT_TOKEN = "soak-agent-token"
SCRAPE_TOKEN = "soak-scrape-token"
DATABASE = "voltpark_soak"


def free_port(variable: str, default: str, *, besides: frozenset[int] = frozenset()) -> int:
    """A free loopback port in the range named by the environment `variable` ("FROM-TO"), other than
    those in `besides` (ports already given to processes not yet started)."""
    first, last = (int(part) for part in os.environ.get(variable, default).split("-"))
    for port in range(first, last + 1):
        if port in besides:
            continue
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{last} (set {variable} to another range)")


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def wait_listening(procs: dict[str, "Proc"], ports: dict[str, int], timeout: float) -> None:
    """Wait until each named process answers on its port; one that exits first, or does not answer
    in `timeout` seconds, is named in the error with the end of its log."""
    deadline = time.monotonic() + timeout
    waiting = dict(ports)
    while waiting:
        for name, port in list(waiting.items()):
            if port_answers(port):
                del waiting[name]
            elif not procs[name].alive:
                raise RuntimeError(f"{name} exited before answering on :{port}:\n{procs[name].log_tail()}")
        if waiting and time.monotonic() > deadline:
            name, port = next(iter(waiting.items()))
            tails = "\n".join(f"{n} (:{p}):\n{procs[n].log_tail()}" for n, p in waiting.items())
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {', '.join(waiting)}:\n{tails}")
        time.sleep(0.2)


def port_answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _pg_bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        bindir = Path(subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        raise RuntimeError("the soak needs PostgreSQL's initdb and pg_ctl (Debian: postgresql)")
    return candidates[-1].parent


class Postgres:
    """A PostgreSQL cluster of the soak's own, made by initdb in its work folder."""

    def __init__(self, workdir: Path, port: int) -> None:
        # A folder of its own under the system's temporary folder: run as root, the cluster belongs to
        # the postgres user, who may not enter the work folder's parents (pytest's are private).
        self.home = Path(tempfile.mkdtemp(prefix="voltpark-soak-pg-"))
        self.home.chmod(0o755)
        self.data = self.home / "data"
        self.log = self.home / "pg.log"
        self.workdir = workdir
        self.port = port
        self.bindir = _pg_bindir()
        # initdb refuses to run as root: the cluster is then the postgres user's.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, stdout=subprocess.DEVNULL)

    def init(self) -> None:
        if self.as_user:
            shutil.chown(self.home, "postgres", "postgres")
        self._run("mkdir", "-m", "700", str(self.data))
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        self.start()
        subprocess.run(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q"]
            + ["-c", f"CREATE DATABASE {DATABASE}"],
            check=True,
        )

    def start(self) -> None:
        # fsync off: the soak tests the platform through restarts, not the disk; every stop is clean.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
            " -c shared_buffers=256MB"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "start",
        )

    def restart(self) -> None:
        """Stop (fast: sessions are cut, as a crash of the server would cut them) and start again."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.start()

    def stop(self) -> None:
        """Stop the cluster and remove it, keeping its log in the work folder."""
        if (self.data / "postmaster.pid").exists():
            stop = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
            subprocess.run([*self.as_user, *stop], check=False, stdout=subprocess.DEVNULL)
        if self.log.exists():
            shutil.copy(self.log, self.workdir / "pg.log")
        shutil.rmtree(self.home, ignore_errors=True)

    def pids(self) -> list[int]:
        pid_file = self.data / "postmaster.pid"
        try:
            return [int(pid_file.read_text().split()[0])]
        except (OSError, ValueError, IndexError):
            return []

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"


class Redis:
    """A redis-server of the soak's own; a restart saves and reloads its data, as a managed Redis does."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        command += ["--save", "", "--appendonly", "no", "--logfile", str(self.dir / "redis.log")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: port_answers(self.port), 20, "redis-server")

    def restart(self) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "save"], check=False, capture_output=True
        )
        if self.process is not None:
            self.process.wait(timeout=30)
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@dataclass
class Proc:
    """One platform process the soak started: its command, log, and the Popen of its current life."""

    name: str
    command: list[str]
    log: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    lives: int = 0
    killed: list[float] = field(default_factory=list)

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.lives += 1

    def kill(self) -> None:
        """SIGKILL the process and every child of its session, at once."""
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)
        self.killed.append(time.time())

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        except ProcessLookupError:
            pass

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no log: {exc})"

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


def celery(name: str, args: list[str], workdir: Path, env: dict[str, str]) -> Proc:
    command = [sys.executable, "-m", "celery", "-A", "voltpark", *args]
    return Proc(name, command, workdir / f"{name}.log", env)


def worker(name: str, queues: list[str], concurrency: int, workdir: Path, env: dict[str, str]) -> Proc:
    args = ["worker", "-Q", ",".join(queues), f"--concurrency={concurrency}", "-n", f"{name}@%h"]
    args += ["--without-mingle", "--without-gossip", "--loglevel=WARNING"]
    return celery(name, args, workdir, env)


# The simulators stand in for 3,000 machines, each with CPUs of its own: here they share two cores
# with the platform, and run ahead of it (nice -10, as root) so that the platform's own load does not
# make the fleet look dead. At equal priority, 20 runnable platform processes left each simulator a
# tenth of a core: it answered after the poll's deadline, and the misses failed the whole fleet
# (docs/benchmarks.md, Soak). Not root: `nice` runs the simulator at the usual priority.
SIMULATOR_NICE = ["nice", "-n", "-10"]


def _simulator(region: str, port: int, hosts: Path, leases: Path, workdir: Path, env: dict[str, str]) -> Proc:
    """The simulated agents of one region's nodes, in a process of their own: one process answering
    3,000 nodes every poll interval took more than the poll's deadline on two cores."""
    agent = [*SIMULATOR_NICE, sys.executable, "-m", "nodeagent", "--simulate", "--hostnames-file", str(hosts)]
    agent += ["--port", str(port), "--token", AGENT_TOKEN, "--log-level", "WARNING"]
    agent += ["--lease-root", str(leases)]
    return Proc(f"agents-{region}", agent, workdir / f"agents-{region}.log", env)


def platform_processes(
    *,
    workdir: Path,
    leases: Path,
    env: dict[str, str],
    regions: list[str],
    web_port: int,
    agents: dict[str, tuple[int, Path]],
) -> dict[str, Proc]:
    """Every process of the platform, by name, not yet started; `agents`: each region's simulator
    (its port, its hostnames file)."""
    web = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{web_port}",
    ]
    web += ["--workers", "2", "--threads", "4", "--access-logfile", str(workdir / "access.log")]
    web += ["voltpark.wsgi:application"]
    procs = {
        **{
            f"agents-{region}": _simulator(region, port, hosts, leases, workdir, env)
            for region, (port, hosts) in agents.items()
        },
        "web": Proc("web", web, workdir / "web.log", env),
        "worker-shared": worker("worker-shared", ["celery", "dispatch"], 1, workdir, env),
        "beat": celery(
            "beat", ["beat", f"--schedule={workdir / 'beat-schedule'}", "--loglevel=WARNING"], workdir, env
        ),
    }
    for region in regions:
        for copy in ("a", "b"):
            name = f"worker-{region}-{copy}"
            procs[name] = worker(name, [f"poll.{region}", f"leases.{region}", "dispatch"], 2, workdir, env)
    return procs
