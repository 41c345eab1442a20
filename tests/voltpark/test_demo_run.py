"""`make demo`'s runner: the logins with each person's role and organization, the address printed last
and plainly once the site answers, and the embedded servers stopped however the demo ends."""

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.live import free_port
from voltpark.demo_logins import PEOPLE, logins_text
from voltpark.demo_run import run

pytestmark = pytest.mark.slow

# A stand-in for the Procfile: a site whose /healthz answers 200, for `seconds` (or until stopped).
SITE = """
import http.server, sys, threading, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404); self.end_headers()
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
time.sleep(float(sys.argv[2]))
"""


def test_each_login_says_the_persons_role_and_organization() -> None:
    text = logins_text()
    assert "finance@demo.voltpark.dev" in text
    assert "finance member of Acme AI: Acme's billing page only (not the staff finance page)" in text
    assert "Voltpark staff finance" in text and "owner of Nebula Labs" in text
    assert len(PEOPLE) == 6 and all(person.what for person in PEOPLE)


def test_the_address_comes_last_once_the_site_answers_and_the_servers_stop_when_it_ends() -> None:
    port = free_port("DEMO_TEST_PORTS", "33600-33649")
    url = f"http://127.0.0.1:{port}/"
    out, stops = io.StringIO(), []
    code = run(
        [sys.executable, "-c", SITE, str(port), "3"], url=url, stop_servers=lambda: stops.append(1), out=out
    )
    assert code == 0 and stops == [1]
    printed = out.getvalue().strip().splitlines()
    assert printed[0].startswith("=") and "Demo accounts:" in printed
    assert f"    {url}" in printed and printed.index(f"    {url}") > printed.index("Demo accounts:")
    assert printed[-2] == "Ctrl-C stops everything, the embedded PostgreSQL and Redis included."


def test_a_signal_stops_the_processes_and_the_embedded_servers(tmp_path: Path) -> None:
    port = free_port("DEMO_TEST_PORTS", "33600-33649")
    env = {**os.environ, "PORT": str(port), "VOLTPARK_DATA_DIR": str(tmp_path)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "voltpark.demo_run", sys.executable, "-c", SITE, str(port), "600"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("Voltpark is running" in line for line in lines):
        lines.append(demo.stdout.readline())
    assert any("Voltpark is running" in line for line in lines), lines
    demo.send_signal(signal.SIGTERM)
    rest, _ = demo.communicate(timeout=30)
    assert demo.returncode is not None
    assert f"Stopping the embedded PostgreSQL and Redis in {tmp_path}" in rest
    with pytest.raises(OSError):  # the site went with it
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
