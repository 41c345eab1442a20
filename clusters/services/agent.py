"""Calling the node agents: many requests at once, bounded, each with a short deadline."""

import asyncio
import atexit
import functools
import json
import logging
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import aiohttp
from django.conf import settings
from django.utils.dateparse import parse_datetime
from yarl import URL

from clusters.services.agent_tokens import AgentTokenUnreadable, decrypt_agent_token

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentCall:
    """One request to one node's agent; `key` names it in the answers."""

    key: Hashable
    method: str
    base_url: str
    token_encrypted: str
    path: str
    body: dict[str, Any] | None = None


class AgentError:
    """Kinds of failed agent calls, as /metrics counts them (voltpark_agent_errors_total)."""

    TIMEOUT = "timeout"  # no answer within the deadline
    CONNECTION = "connection"  # refused, reset or dropped
    HTTP_STATUS = "http_status"  # answered, but not 200
    BAD_ANSWER = "bad_answer"  # 200, but not the JSON the platform expects
    TOKEN = "token"  # its stored agent token cannot be decrypted: nothing was sent


UNREADABLE_TOKEN = (
    "its agent token cannot be decrypted with AGENT_TOKEN_KEYS (a key was dropped or changed): "
    "restore the key or set the node's token again"
)


@dataclass(frozen=True)
class Retry:
    """Ask a call once more, `delay_s` after its own unusable answer, with its own deadline."""

    usable: Callable[["AgentAnswer"], bool]
    delay_s: float
    timeout_s: float


@dataclass(frozen=True)
class AgentAnswer:
    """What came back: a status and JSON body, or the reason nothing usable did (and its kind)."""

    status: int | None
    body: dict[str, Any] | None
    error: str = ""
    kind: str = ""
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body is not None


def agent_token(ciphertext: str) -> str | None:
    """The bearer token for a node, or None when no key decrypts it (then nothing is sent)."""
    return _agent_token(ciphertext, tuple(settings.AGENT_TOKEN_KEYS))


@functools.lru_cache(maxsize=4096)
def _agent_token(ciphertext: str, keys: tuple[str, ...]) -> str | None:
    # Cached because a fleet sweep would decrypt it thousands of times; by keys too, so a change of
    # AGENT_TOKEN_KEYS is never answered from the old keys.
    try:
        return decrypt_agent_token(ciphertext)
    except AgentTokenUnreadable:
        return None


@functools.lru_cache(maxsize=4096)
def _log_unreadable_token(base_url: str, ciphertext: str, keys: tuple[str, ...]) -> None:
    # Once per node, token and keys in a process: a sweep every few seconds must not flood the log.
    logger.error("The node agent at %s was not called: %s.", base_url, UNREADABLE_TOKEN)


class AgentClient:
    """One event loop and one pool of keep-alive connections, reused by every batch of a sweep.

    A lease sweep calls the agents batch after batch; opening a session per batch reconnected
    `concurrency` sockets each time (5,000 connects for 10,000 endings). The session opens on the
    first call, so a sweep with nothing to do opens nothing.
    """

    def __init__(self, *, concurrency: int) -> None:
        self.concurrency = concurrency
        self._runner: asyncio.Runner | None = None
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> "AgentClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self, calls: list[AgentCall], *, timeout_s: float, retry: Retry | None = None
    ) -> dict[Hashable, AgentAnswer]:
        """Every call's answer, keyed by `AgentCall.key`; with `retry`, a call whose answer is not
        usable is asked again on its own, without waiting for the slowest of the others."""
        if not calls:
            return {}
        if self._runner is None:
            self._runner = asyncio.Runner()
            self._session = self._runner.run(_open_session(self.concurrency))
        return self._runner.run(_call_all(self._session, calls, timeout_s, self.concurrency, retry))  # type: ignore[arg-type]

    @classmethod
    def kept(cls, *, concurrency: int) -> "AgentClient":
        """This process's client of that concurrency, kept open between sweeps so that each poll
        reuses the connections of the one before.

        A client per sweep connected to every node anew every 5 s: 1,000 connects a region, a tenth
        of the poll's CPU and more of the agents' (docs/decisions.md). Made again in a forked child
        (a Celery worker's), whose parent's loop and sockets it must not share.
        """
        key = (os.getpid(), concurrency)
        client = _KEPT.get(key)
        if client is None:
            client = _KEPT[key] = cls(concurrency=concurrency)
        return client

    def close(self) -> None:
        if self._runner is None:
            return
        if self._session is not None:
            self._runner.run(self._session.close())
        self._runner.close()
        self._runner = self._session = None


_KEPT: dict[tuple[int, int], AgentClient] = {}


@atexit.register
def _close_kept() -> None:
    for key, client in list(_KEPT.items()):
        if key[0] == os.getpid():
            client.close()
    _KEPT.clear()


async def _open_session(concurrency: int) -> aiohttp.ClientSession:
    # aiohttp rather than httpx: measured here, httpx spent 1-4 ms of CPU per request and could not
    # sweep 3,000 nodes inside 5 s on two cores; aiohttp spends about 0.3 ms (docs/decisions.md).
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector)


async def _call_all(
    session: aiohttp.ClientSession,
    calls: list[AgentCall],
    timeout_s: float,
    concurrency: int,
    retry: Retry | None,
) -> dict[Hashable, AgentAnswer]:
    semaphore = asyncio.Semaphore(concurrency)
    answers = await asyncio.gather(*(_asked(session, semaphore, call, timeout_s, retry) for call in calls))
    return {call.key: answer for call, answer in zip(calls, answers, strict=True)}


async def _asked(
    session: aiohttp.ClientSession,
    semaphore: asyncio.Semaphore,
    call: AgentCall,
    timeout_s: float,
    retry: Retry | None,
) -> AgentAnswer:
    answer = await _bounded(session, semaphore, call, _timeout(timeout_s))
    if retry is None or retry.usable(answer):
        return answer
    # The wait holds no connection slot: a node waiting to be asked again delays no other.
    await asyncio.sleep(retry.delay_s)
    again = await _bounded(session, semaphore, call, _timeout(retry.timeout_s))
    return replace(again, attempts=2)


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds, sock_connect=seconds)


async def _bounded(
    session: aiohttp.ClientSession,
    semaphore: asyncio.Semaphore,
    call: AgentCall,
    timeout: aiohttp.ClientTimeout,
) -> AgentAnswer:
    async with semaphore:
        try:
            return await _one(session, call, timeout)
        except TimeoutError:
            return AgentAnswer(None, None, "timed out", AgentError.TIMEOUT)
        except (aiohttp.ClientError, ValueError) as exc:
            return AgentAnswer(None, None, (f"{type(exc).__name__}: {exc}")[:200], AgentError.CONNECTION)


async def _one(
    session: aiohttp.ClientSession, call: AgentCall, timeout: aiohttp.ClientTimeout
) -> AgentAnswer:
    token = agent_token(call.token_encrypted)
    if token is None:
        _log_unreadable_token(call.base_url, call.token_encrypted, tuple(settings.AGENT_TOKEN_KEYS))
        return AgentAnswer(None, None, UNREADABLE_TOKEN, AgentError.TOKEN)
    headers = {"Authorization": f"Bearer {token}"}
    url = _url(call.base_url, call.path)
    async with session.request(
        call.method, url, headers=headers, json=call.body, timeout=timeout
    ) as response:
        raw = await response.read()
        status = response.status
    kind = AgentError.BAD_ANSWER if status == 200 else AgentError.HTTP_STATUS
    try:
        body = json.loads(raw)
    except ValueError:
        return AgentAnswer(status, None, f"HTTP {status}, not JSON", kind)
    if not isinstance(body, dict):
        return AgentAnswer(status, None, f"HTTP {status}, not a JSON object", kind)
    if status == 200:
        return AgentAnswer(status, body)
    return AgentAnswer(status, body, f"HTTP {status}: {body.get('error', '')}", kind)


@functools.lru_cache(maxsize=8192)
def _base_url(base_url: str) -> URL:
    return URL(base_url.rstrip("/") + "/")


def _url(base_url: str, path: str) -> URL:
    """The agent URL of `path`; the node's base is parsed once per process, not once per request.

    `path` is built here from a lease's UUID or a fixed route, so it needs no further encoding.
    """
    base = _base_url(base_url)
    return base.with_path(base.raw_path + path.lstrip("/"), encoded=True)


def parse_xid(reading: dict[str, Any]) -> tuple[int | None, datetime | None]:
    """The code and time of a GPU reading's last XID error, if it has one."""
    xid = reading.get("last_xid")
    if not isinstance(xid, dict):
        return None, None
    code = xid.get("code")
    at = parse_datetime(str(xid["at"])) if xid.get("at") else None
    return (code if isinstance(code, int) and not isinstance(code, bool) else None), at
