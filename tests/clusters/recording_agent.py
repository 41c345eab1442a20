"""A node agent that answers every call and remembers what it was sent: the boundary where the
platform's requests are checked (what the real agent ignores today, such as `sudo` and `peers`).

It listens on a loopback port from RUNTIME_TEST_PORTS and serves many nodes under
`/nodes/<hostname>/`, as the simulated fleet does.
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
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


@contextmanager
def recording_agent() -> Iterator[RecordingAgent]:
    agent = RecordingAgent()
    port = free_port("RUNTIME_TEST_PORTS", "18300-18400")
    server = ThreadingHTTPServer(("127.0.0.1", port), agent.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    agent.base_url = f"http://127.0.0.1:{port}"
    try:
        yield agent
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
