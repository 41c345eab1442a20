"""The simulated fleet's HTTP side: fault switches, network misbehaviour, many nodes on one port.

Built on the production agent's app (nodeagent/app.py) by adding routes and one middleware, so the
code a real node runs carries no simulator hook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from nodeagent.app import (
    RESOLVER_KEY,
    add_agent_routes,
    agent_app,
    authorize,
    json_object,
    json_response,
)
from nodeagent.backends.simulated import SimulatedFleet, SimulatedNode
from nodeagent.model import AgentError, Backend
from nodeagent.server import Server, resolve_token_sha256, run_in_thread

FAULT_PARAMS = {"gpu_index", "code", "count", "temperature_c", "seconds", "message", "answers"}
GARBAGE = b"\x00\x9f<html>502 Bad Gateway</html"  # a 200 whose body is not JSON
FAULTS_PATH = "/v1/simulate/faults"


@web.middleware
async def misbehave(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Apply the node's refuse, restart, slow and garbage faults before answering; the fault switches
    stay reachable."""
    if request.match_info.http_exception is not None or request.path.endswith(FAULTS_PATH):
        return await handler(request)
    node = _node(request)
    if node.faults.refuse or node.down:
        if request.transport is not None:
            request.transport.abort()
        # Never sent: the transport is closed, so the client sees a dropped connection.
        return web.Response(status=503)
    if node.slow_answer():
        await asyncio.sleep(node.faults.delay_s)
    if node.faults.garbage:
        return web.Response(body=GARBAGE, content_type="application/json")
    return await handler(request)


def _node(request: web.Request) -> SimulatedNode:
    node = request.app[RESOLVER_KEY](request)
    assert isinstance(node, SimulatedNode), "the simulator serves simulated nodes only"
    return node


def _simulated(request: web.Request) -> SimulatedNode:
    """The simulated node a fault request is for."""
    authorize(request)
    return _node(request)


async def post_fault(request: web.Request) -> web.Response:
    """POST /v1/simulate/faults: switch a fault on, e.g. {"fault": "xid", "gpu_index": 3}."""
    node = _simulated(request)
    body = await json_object(request)
    fault = body.pop("fault", None)
    unknown = sorted(set(body) - FAULT_PARAMS)
    if not isinstance(fault, str) or unknown:
        detail = f"Unknown fields {unknown}." if unknown else "fault must be a string."
        raise AgentError(400, "invalid_fault", detail)
    node.set_fault(fault, **body)
    return json_response({"node": node.hostname, "faults": node.faults_json()})


async def delete_faults(request: web.Request) -> web.Response:
    """DELETE /v1/simulate/faults[?fault=xid]: switch one fault, or all, off."""
    node = _simulated(request)
    node.clear_faults(request.query.get("fault"))
    return json_response({"node": node.hostname, "faults": node.faults_json()})


async def get_faults(request: web.Request) -> web.Response:
    """GET /v1/simulate/faults: the faults switched on."""
    node = _simulated(request)
    return json_response({"node": node.hostname, "faults": node.faults_json()})


def _add_simulator_routes(app: web.Application, prefix: str) -> None:
    add_agent_routes(app, prefix)
    app.router.add_get(f"{prefix}{FAULTS_PATH}", get_faults)
    app.router.add_post(f"{prefix}{FAULTS_PATH}", post_fault)
    app.router.add_delete(f"{prefix}{FAULTS_PATH}", delete_faults)


def create_simulated_node_app(node: SimulatedNode, token_sha256: str) -> web.Application:
    """One simulated node at /v1/..., with its fault switches."""
    app = agent_app(token_sha256, lambda _request: node, middlewares=(misbehave,))
    _add_simulator_routes(app, "")
    return app


def create_fleet_app(fleet: SimulatedFleet, token_sha256: str) -> web.Application:
    """Many simulated nodes in one process, each under /nodes/<hostname>/v1/..."""

    def resolve(request: web.Request) -> Backend:
        hostname = request.match_info["hostname"]
        try:
            return fleet.node(hostname)
        except KeyError:
            raise AgentError(404, "unknown_node", f"No simulated node {hostname}.") from None

    app = agent_app(token_sha256, resolve, middlewares=(misbehave,))
    _add_simulator_routes(app, "/nodes/{hostname}")
    return app


def node_url(base_url: str, hostname: str) -> str:
    """Base URL of one simulated node of a fleet server."""
    return f"{base_url}/nodes/{hostname}/"


def fleet_server(fleet: SimulatedFleet, token_sha256: str, host: str = "127.0.0.1", port: int = 0) -> Server:
    """A server for a simulated fleet under /nodes/<hostname>/."""
    return Server(create_fleet_app(fleet, token_sha256), host, port, shutdown_timeout=1.0)


def simulated_node_server(
    node: SimulatedNode, token_sha256: str, host: str = "127.0.0.1", port: int = 0
) -> Server:
    """A server for one simulated node; its refuse fault closes the listening port."""
    app = create_simulated_node_app(node, token_sha256)
    return Server(app, host, port, refusable=node, shutdown_timeout=1.0)


def start_in_thread(
    fleet: SimulatedFleet,
    *,
    token: str | None = None,
    token_sha256: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> tuple[str, Callable[[], None]]:
    """Serve a simulated fleet from a background thread; node URLs via node_url()."""
    return run_in_thread(fleet_server(fleet, resolve_token_sha256(token, token_sha256), host, port))


def start_simulated_node_in_thread(
    node: SimulatedNode, *, token: str | None = None, token_sha256: str | None = None
) -> tuple[str, Callable[[], None]]:
    """Serve one simulated node at <url>/v1/... from a background thread."""
    return run_in_thread(simulated_node_server(node, resolve_token_sha256(token, token_sha256)))
