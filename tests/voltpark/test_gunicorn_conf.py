"""gunicorn.conf.py: the web process's port, workers, threads and timeout come from the environment."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]


def gunicorn_config(**env: str) -> subprocess.CompletedProcess[str]:
    """gunicorn's settings as it prints them after reading gunicorn.conf.py from the working directory;
    the web process's own variables are only those given."""
    ours = {
        "PORT",
        "GUNICORN_WORKERS",
        "GUNICORN_THREADS",
        "GUNICORN_TIMEOUT_S",
        "GUNICORN_KEEPALIVE_S",
        "FORWARDED_ALLOW_IPS",
    }
    environment = {k: v for k, v in os.environ.items() if k not in ours}
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "voltpark.wsgi:application"],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def values(output: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)\s+= (.*)$", output, re.M))


def test_the_defaults_serve_port_8000_with_4_workers_of_4_threads_and_log_each_request() -> None:
    result = gunicorn_config()
    config = values(result.stdout)
    assert result.returncode == 0, result.stderr
    assert config["bind"] == "['0.0.0.0:8000']"
    assert (config["workers"], config["threads"], config["timeout"]) == ("4", "4", "30")
    assert config["keepalive"] == "75"
    assert config["accesslog"] == "-" and "%(M)sms" in config["access_log_format"]
    assert "request_id=%({x-request-id}o)s" in config["access_log_format"]
    assert config["forwarded_allow_ips"] == "['127.0.0.1', '::1']"


def test_the_environment_sets_port_workers_threads_timeout_and_trusted_proxies() -> None:
    result = gunicorn_config(
        PORT="9001",
        GUNICORN_WORKERS="3",
        GUNICORN_THREADS="8",
        GUNICORN_TIMEOUT_S="120",
        GUNICORN_KEEPALIVE_S="650",
        FORWARDED_ALLOW_IPS="10.0.0.1,10.0.0.2",
    )
    config = values(result.stdout)
    assert result.returncode == 0, result.stderr
    assert config["bind"] == "['0.0.0.0:9001']"
    assert (config["workers"], config["threads"], config["timeout"]) == ("3", "8", "120")
    assert config["keepalive"] == "650"
    assert config["forwarded_allow_ips"] == "['10.0.0.1', '10.0.0.2']"


def test_a_bad_value_stops_start_up_naming_the_variable() -> None:
    result = gunicorn_config(GUNICORN_WORKERS="many")
    assert result.returncode != 0
    assert "GUNICORN_WORKERS must be a whole number, not 'many'" in result.stderr


HELLO_APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""


@pytest.mark.slow
def test_a_keep_alive_connection_idle_for_seconds_is_still_answered(tmp_path: Path) -> None:
    # gunicorn's own default closes it after 2 s: a request sent then got a reset, no answer.
    (tmp_path / "hello.py").write_text(HELLO_APP)
    port = free_port("BROWSER_TEST_PORTS", "18400-18499")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    env.update(PORT=str(port), PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(ROOT / "gunicorn.conf.py"),
        "hello:application",
    ]
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        connection = _connect(port)
        request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
        connection.sendall(request)
        assert _answer(connection).startswith(b"HTTP/1.1 200")
        time.sleep(3.5)
        connection.sendall(request)
        assert _answer(connection).startswith(b"HTTP/1.1 200")
        connection.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answer(connection: socket.socket) -> bytes:
    """One whole answer of the hello app (its body is "ok"), or what came before the server hung up."""
    data = b""
    while not data.endswith(b"\r\n\r\nok"):
        try:
            chunk = connection.recv(4096)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return data


def _connect(port: int) -> socket.socket:
    deadline = time.monotonic() + 30
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
