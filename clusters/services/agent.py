"""Calling the node agents: many requests at once, bounded, each with a short deadline."""

import asyncio
import functools
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from django.utils.dateparse import parse_datetime

from clusters.crypto import decrypt_agent_token


@dataclass(frozen=True)
class AgentCall:
    """One request to one node's agent; `key` names it in the answers."""

    key: Hashable
    method: str
    base_url: str
    token_encrypted: str
    path: str
    body: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/" + self.path.lstrip("/")


@dataclass(frozen=True)
class AgentAnswer:
    """What came back: a status and JSON body, or the reason nothing usable did."""

    status: int | None
    body: dict[str, Any] | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body is not None


@functools.lru_cache(maxsize=4096)
def agent_token(ciphertext: str) -> str:
    """The bearer token for a node; cached because a fleet sweep would decrypt it thousands of times."""
    return decrypt_agent_token(ciphertext)


def call_agents(calls: list[AgentCall], *, timeout_s: float, concurrency: int) -> dict[Hashable, AgentAnswer]:
    """Issue every call concurrently (at most `concurrency` at a time); never raises for a node's failure."""
    if not calls:
        return {}
    return asyncio.run(_call_all(calls, timeout_s, concurrency))


async def _call_all(
    calls: list[AgentCall], timeout_s: float, concurrency: int
) -> dict[Hashable, AgentAnswer]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # The pool timeout is generous: waiting for a free connection is our own queue, not the node's fault.
    timeout = httpx.Timeout(timeout_s, pool=None)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        answers = await asyncio.gather(*(_bounded(client, semaphore, call, timeout_s) for call in calls))
    return {call.key: answer for call, answer in zip(calls, answers, strict=True)}


async def _bounded(
    client: httpx.AsyncClient, semaphore: asyncio.Semaphore, call: AgentCall, timeout_s: float
) -> AgentAnswer:
    async with semaphore:
        try:
            # An overall deadline too: httpx's timeouts are per read, and a trickling node must not stall us.
            async with asyncio.timeout(timeout_s * 2):
                return await _one(client, call)
        except TimeoutError:
            return AgentAnswer(None, None, "timed out")


async def _one(client: httpx.AsyncClient, call: AgentCall) -> AgentAnswer:
    headers = {"Authorization": f"Bearer {agent_token(call.token_encrypted)}"}
    try:
        response = await client.request(call.method, call.url, headers=headers, json=call.body)
    except httpx.TimeoutException:
        return AgentAnswer(None, None, "timed out")
    except httpx.HTTPError as exc:
        return AgentAnswer(None, None, f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__)
    try:
        body = response.json()
    except ValueError:
        return AgentAnswer(response.status_code, None, f"HTTP {response.status_code}, not JSON")
    if not isinstance(body, dict):
        return AgentAnswer(response.status_code, None, f"HTTP {response.status_code}, not a JSON object")
    error = "" if response.status_code == 200 else f"HTTP {response.status_code}: {body.get('error', '')}"
    return AgentAnswer(response.status_code, body, error)


def parse_xid(reading: dict[str, Any]) -> tuple[int | None, datetime | None]:
    """The code and time of a GPU reading's last XID error, if it has one."""
    xid = reading.get("last_xid")
    if not isinstance(xid, dict):
        return None, None
    code = xid.get("code")
    at = parse_datetime(str(xid["at"])) if xid.get("at") else None
    return (code if isinstance(code, int) and not isinstance(code, bool) else None), at
