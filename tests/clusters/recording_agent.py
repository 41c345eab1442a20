"""A node agent that answers every call and remembers what it was sent: the boundary where the
platform's requests are checked (what the real agent ignores today, such as `sudo` and `peers`).

It listens on a loopback port from RUNTIME_TEST_PORTS and serves many nodes under
`/nodes/<hostname>/`, as the simulated fleet does. `serving` and `answer_json` serve other loopback agents
the same way.
"""

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.live import free_port


class RecordingAgent:
    """Every PUT body, by node hostname then lease id, in the order received."""

    def __init__(self) -> None:
        self.puts: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        self.base_url = ""

    def last_put(self, hostname: str, lease_id: object) -> dict[str, Any]:
        return self.puts[hostname][str(lease_id)][-1]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                _, _, hostname, _, _, lease_id = self.path.rstrip("/").split("/")
                length = int(self.headers.get("Content-Length", 0))
                agent.puts[hostname][lease_id].append(json.loads(self.rfile.read(length)))
                self._answer({"lease_id": lease_id})

            def do_DELETE(self) -> None:
                self._answer({"gpus_clean": True})

            def _answer(self, body: dict[str, Any]) -> None:
                answer_json(self, 200, body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


def answer_json(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a loopback port from RUNTIME_TEST_PORTS in a thread; yields its base URL."""
    port = free_port("RUNTIME_TEST_PORTS", "18300-18400")
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def recording_agent() -> Iterator[RecordingAgent]:
    agent = RecordingAgent()
    with serving(agent.handler()) as base_url:
        agent.base_url = base_url
        yield agent
