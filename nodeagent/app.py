"""The HTTP API of the node agent (aiohttp.web): readings, and lease accounts installed and removed.

The simulated fleet adds its own routes and middleware to these (nodeagent/simulator.py); nothing
here knows it exists.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, TypeVar

from aiohttp import web

from nodeagent.keys import validate_lease_id
from nodeagent.lease_request import parse_lease_request
from nodeagent.model import AgentError, Backend

MAX_BODY_BYTES = 64 * 1024
TOO_LARGE = f"The request body is over {MAX_BODY_BYTES} bytes (64 KiB)."
Resolver = Callable[[web.Request], Backend]
TOKEN_KEY = web.AppKey("token_sha256", tuple[str, ...])
RESOLVER_KEY: web.AppKey[Resolver] = web.AppKey("resolver")
HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}
T = TypeVar("T")
log = logging.getLogger("nodeagent")


def hash_token(token: str) -> str:
    """SHA-256 hex of a bearer token: the only form of it the agent keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def json_response(body: Any, status: int = 200) -> web.Response:
    """A JSON answer."""
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


def error_response(status: int, code: str, detail: str, field: str | None = None) -> web.Response:
    """The JSON body of every 4xx: a machine code, a sentence for people, the field when one is at fault."""
    body = {"error": code, "detail": detail}
    return json_response(body if field is None else {**body, "field": field}, status)


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn refusals, aiohttp's own HTTP errors and bugs into JSON answers."""
    try:
        return await handler(request)
    except AgentError as exc:
        return error_response(exc.status, exc.code, exc.detail, exc.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = TOO_LARGE if exc.status == 413 else f"{exc.reason}: {request.method} {request.path}."
        code = HTTP_ERROR_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, detail)
    except Exception:
        # A bug must cost one answer, not the agent: log it and keep serving.
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(500, "internal_error", "The agent failed to answer; see its log.")


def authorize(request: web.Request) -> None:
    """Check the bearer token against the stored SHA-256."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AgentError(401, "unauthorized", "Send the agent token as 'Authorization: Bearer …'.")
    digest = hash_token(token.strip())
    # Every stored hash is compared (no early exit), so the timing says nothing of which matched.
    matches = [hmac.compare_digest(digest, stored) for stored in request.app[TOKEN_KEY]]
    if not any(matches):
        raise AgentError(401, "unauthorized", "The bearer token is not this agent's token.")


def node_of(request: web.Request) -> Backend:
    """The node this request is for."""
    return request.app[RESOLVER_KEY](request)


async def _call(backend: Backend, fn: Callable[..., T], *args: Any) -> T:
    """Run a backend call, in a worker thread when it touches hardware."""
    if backend.blocking:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
    return fn(*args)


async def health(request: web.Request) -> web.Response:
    """GET /v1/health: whether NVML works and every GPU answers; no token needed."""
    backend = node_of(request)
    reading = await _call(backend, backend.read_gpus)
    ok = not reading.degraded and not any(gpu.lost for gpu in reading.gpus)
    body = {
        "status": "ok" if ok else "degraded",
        "backend": backend.name,
        "node": backend.hostname,
        "gpus": len(reading.gpus),
    }
    return json_response(body)


async def gpus(request: web.Request) -> web.Response:
    """GET /v1/gpus: one reading of every GPU, and the leases installed."""
    backend = node_of(request)
    authorize(request)
    reading = await _call(backend, backend.read_gpus)
    leases = await _call(backend, backend.installed_leases)
    return web.Response(body=reading.to_json(leases), content_type="application/json")


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object (413 past the size limit, 400 if not JSON)."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise AgentError(413, "body_too_large", TOO_LARGE)
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise AgentError(400, "malformed_json", f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise AgentError(400, "invalid_body", "The body must be a JSON object.")
    return body


async def put_lease(request: web.Request) -> web.Response:
    """PUT /v1/leases/{lease_id}: install the lease's account, keys and GPUs (idempotent)."""
    backend = node_of(request)
    authorize(request)
    lease_id = validate_lease_id(request.match_info["lease_id"])
    body = await json_object(request)
    lease = parse_lease_request(lease_id, body, await _call(backend, backend.gpu_count))
    install = functools.partial(
        backend.install_lease,
        lease.lease_id,
        lease.gpu_indices,
        lease.keys,
        sudo=lease.sudo,
        peers=lease.peers,
        placement=lease.placement,
    )
    result = await _call(backend, install)
    return json_response({**asdict(result), "gpu_indices": list(result.gpu_indices)})


async def delete_lease(request: web.Request) -> web.Response:
    """DELETE /v1/leases/{lease_id}: revoke the keys, stop the processes (idempotent)."""
    backend = node_of(request)
    authorize(request)
    lease_id = validate_lease_id(request.match_info["lease_id"])
    result = await _call(backend, backend.revoke_lease, lease_id)
    return json_response(asdict(result))


def add_agent_routes(app: web.Application, prefix: str = "") -> None:
    """Register the endpoints under a path prefix ('' for a single node)."""
    app.router.add_get(f"{prefix}/v1/health", health)
    app.router.add_get(f"{prefix}/v1/gpus", gpus)
    app.router.add_put(f"{prefix}/v1/leases/{{lease_id}}", put_lease)
    app.router.add_delete(f"{prefix}/v1/leases/{{lease_id}}", delete_lease)


def agent_app(token_sha256: str, resolver: Resolver, middlewares: tuple[Any, ...] = ()) -> web.Application:
    """An application with the size limit, JSON errors (outermost), token and node lookup.

    `token_sha256` may list several hashes separated by commas: while a token is rotated the node
    accepts the old one and the new one, so the platform can switch without a refused call.
    """
    digests = tuple(part.strip() for part in token_sha256.split(","))
    for digest in digests:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("the token SHA-256 must be 64 lowercase hex digits (several: comma-separated)")
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[json_errors, *middlewares])
    app[TOKEN_KEY] = digests
    app[RESOLVER_KEY] = resolver
    return app


def create_node_app(backend: Backend, token_sha256: str) -> web.Application:
    """The agent of one node, serving /v1/... at the root."""
    app = agent_app(token_sha256, lambda _request: backend)
    add_agent_routes(app)
    return app
