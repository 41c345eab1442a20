"""Running an agent app: on a port in this thread's loop, or in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from nodeagent.app import create_node_app, hash_token
from nodeagent.model import Backend


class Refusable(Protocol):
    """A node that can stop accepting connections (the simulator's refuse fault)."""

    refuse_listeners: list[Callable[[bool], None]]

    @property
    def refusing(self) -> bool: ...


def resolve_token_sha256(token: str | None, token_sha256: str | None) -> str:
    """The stored form of the token: given as SHA-256 hex, or hashed from the token."""
    if token_sha256:
        return token_sha256.strip().lower()
    if token:
        return hash_token(token)
    raise ValueError("give the agent token, or its SHA-256 hex")


class Server:
    """One listening port serving an app; a refusable node closes the port while it refuses."""

    def __init__(
        self,
        app: web.Application,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        refusable: Refusable | None = None,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
        self.host, self.port = host, port
        self.refusable = refusable
        self._site: web.TCPSite | None = None
        self._toggle_lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """http://host:port of the server, with the port it got."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind the port (an ephemeral one when port is 0) and start answering."""
        self._loop = asyncio.get_running_loop()
        await self.runner.setup()
        await self._open()
        if self.refusable is not None:
            self.refusable.refuse_listeners.append(self._on_refuse)
            if self.refusable.refusing:
                await self._close_port()

    async def _open(self) -> None:
        """Listen on the port (again, after a refuse fault is cleared)."""
        site = web.TCPSite(self.runner, self.host, self.port)
        await site.start()
        self._site = site
        if self.port == 0:
            self.port = self.runner.addresses[0][1]

    async def _close_port(self) -> None:
        """Stop listening, so that new connections are refused by the kernel."""
        if self._site is not None:
            site, self._site = self._site, None
            await site.stop()

    def _on_refuse(self, refuse: bool) -> None:
        """Listener of the node's refuse fault; may be called from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._schedule_toggle, refuse)

    def _schedule_toggle(self, refuse: bool) -> None:
        """Start the port change as a task of the server's loop."""
        asyncio.ensure_future(self._toggle(refuse))

    async def _toggle(self, refuse: bool) -> None:
        """Close or reopen the port; serialized so flips apply in order."""
        async with self._toggle_lock:
            if refuse:
                await self._close_port()
            elif self._site is None:
                await self._open()

    async def close(self) -> None:
        """Stop listening and finish the connections."""
        if self.refusable is not None and self._on_refuse in self.refusable.refuse_listeners:
            self.refusable.refuse_listeners.remove(self._on_refuse)
        await self.runner.cleanup()


def node_server(backend: Backend, token_sha256: str, host: str = "127.0.0.1", port: int = 0) -> Server:
    """A server for one node at /v1/..."""
    return Server(create_node_app(backend, token_sha256), host, port, shutdown_timeout=1.0)


def run_in_thread(server: Server) -> tuple[str, Callable[[], None]]:
    """Serve from a daemon thread with its own event loop; returns (url, stop)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        """The thread: start, serve until stopped, then clean up."""
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # handed to the caller, who re-raises it
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(server.close())
        loop.close()

    thread = threading.Thread(target=main, name="nodeagent-server", daemon=True)
    thread.start()
    started.wait()
    if failure:
        raise failure[0]

    def stop() -> None:
        """Stop the server and wait for its thread; safe to call twice."""
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    return server.url, stop


def start_node_in_thread(
    backend: Backend,
    *,
    token: str | None = None,
    token_sha256: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> tuple[str, Callable[[], None]]:
    """Serve one node at <url>/v1/... from a background thread."""
    server = node_server(backend, resolve_token_sha256(token, token_sha256), host, port)
    return run_in_thread(server)
