"""The Voltpark API as Python calls: one method per operation, each returning the API's JSON.

    from voltpark_client import Client
    with Client.from_environment() as vp:
        lease = vp.book(gpus=8, region="us-tx-1")
        lease = vp.wait_until_active(lease["id"])
        print(lease["nodes"][0]["ssh_command"])

Every refusal is an `ApiError` carrying the API's `status`, stable `code` and `detail` sentence.
"""

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import httpx

from voltpark_client.config import Settings, load_settings

__all__ = ["ApiError", "Client", "ConnectionFailed", "LeaseEnded", "VoltparkError", "WaitTimedOut"]

VERSION = "0.1.0"
PAGE_SIZE = 100
# Transport failures worth trying again: the request is a read or carries an Idempotency-Key,
# so a second attempt after a dropped connection books nothing twice.
RETRIES = 2
RETRY_PAUSE_S = 0.5
LIVE_STATES = ("scheduled", "active")
Json = dict[str, Any]


class VoltparkError(Exception):
    """Anything the client could not do; `str()` is a sentence for a person."""


class ApiError(VoltparkError):
    """The API refused: its HTTP status, its stable `code`, its `detail` sentence and the whole body."""

    def __init__(self, *, status: int, code: str, detail: str, body: Json) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.body = status, code, detail, body

    @classmethod
    def made_here(cls, status: int, code: str, detail: str) -> "ApiError":
        """A refusal the client concludes from the API's answers (as the API would word it)."""
        return cls(status=status, code=code, detail=detail, body={"code": code, "detail": detail})

    @classmethod
    def from_response(cls, response: httpx.Response) -> "ApiError":
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "detail" not in body:
            reason = f"{response.status_code} {response.reason_phrase}".strip()
            body = {"code": "http_error", "detail": f"The server answered {reason}."}
        return cls(
            status=response.status_code, code=str(body.get("code", "error")), detail=body["detail"], body=body
        )


class ConnectionFailed(VoltparkError):
    """The server could not be reached (or stopped answering)."""


class WaitTimedOut(VoltparkError):
    """A lease was still not active when the wait ran out; `lease` is its last known state."""

    def __init__(self, message: str, lease: Json) -> None:
        super().__init__(message)
        self.lease = lease


class LeaseEnded(VoltparkError):
    """A lease that was waited for ended, failed or was cancelled instead of becoming active."""

    def __init__(self, message: str, lease: Json) -> None:
        super().__init__(message)
        self.lease = lease


class Client:
    """A session with the API at `url`, authenticated by an API token (`vp_…`)."""

    def __init__(
        self, url: str, token: str, *, timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1/",
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"voltpark-client/{VERSION}"},
            timeout=timeout_s,
            transport=transport,
        )

    @classmethod
    def from_environment(cls, *, settings: Settings | None = None, **options: Any) -> "Client":
        """A client with the URL and token of VOLTPARK_URL/VOLTPARK_TOKEN or `voltpark login`'s file."""
        settings = settings or load_settings()
        if not settings.token:
            raise VoltparkError(
                "No API token: set VOLTPARK_TOKEN or run `voltpark login` "
                f"(create a token at {settings.url}/account/tokens/)."
            )
        return cls(settings.url, settings.token, **options)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- The fleet

    def regions(self) -> list[Json]:
        """Every region: code, name, US state, GPUs in total and free to book now."""
        return self._request("GET", "regions/")

    def availability(
        self, *, region: str, gpus: int, start: datetime | None = None, end: datetime | None = None
    ) -> Json:
        """How many GPUs of `region` are free for the whole window, and whether `gpus` fit."""
        params: dict[str, Any] = {"region": region, "gpus": gpus}
        params.update({k: _instant(v) for k, v in (("start", start), ("end", end)) if v is not None})
        return self._request("GET", "availability/", params=params)

    def offerings(self, *, gpus: int, hours: int, region: str | None = None, per_region: int = 1) -> Json:
        """The earliest windows of `gpus` GPUs for `hours` hours (in each region, or in `region`),
        each bookable as a reserved lease with its region, start and end."""
        params: dict[str, Any] = {"gpus": gpus, "hours": hours, "per_region": per_region}
        if region:
            params["region"] = region
        return self._request("GET", "capacity/offerings/", params=params)

    # --- Leases

    def leases(self, *, state: str | None = None) -> list[Json]:
        """The organization's leases, newest first (every page of them)."""
        return self._all_pages("leases/", {"state": state} if state else {})

    def lease(self, lease_id: str) -> Json:
        return self._request("GET", f"leases/{lease_id}/")

    def book(
        self,
        *,
        gpus: int,
        region: str,
        start: datetime | None = None,
        end: datetime | None = None,
        ssh_key_ids: Iterable[str] = (),
    ) -> Json:
        """Book on demand (no window: runs until released) or reserved [start, end)."""
        body: Json = {"region": region, "gpus": gpus, "ssh_key_ids": list(ssh_key_ids)}
        if start is None and end is None:
            body["kind"] = "on_demand"
        else:
            body.update(kind="reserved", start=_instant(start), end=_instant(end))
        return self._post("leases/", body)

    def extend(self, lease_id: str, *, end: datetime) -> Json:
        """Move a reserved lease's end later, on the same GPUs."""
        return self._post(f"leases/{lease_id}/extend/", {"end": _instant(end)})

    def release(self, lease_id: str) -> Json:
        """End a running lease now (a scheduled one is cancelled); billing stops at once."""
        return self._post(f"leases/{lease_id}/release/", None)

    def wait_until_active(
        self,
        lease_id: str,
        *,
        timeout_s: float = 600.0,
        interval_s: float = 2.0,
        on_poll: Callable[[Json], None] | None = None,
    ) -> Json:
        """Poll the lease until it is active; `on_poll(lease)` after each read (a progress display)."""
        deadline = time.monotonic() + timeout_s
        while True:
            lease = self.lease(lease_id)
            if on_poll is not None:
                on_poll(lease)
            if lease["state"] == "active":
                return lease
            if lease["state"] not in LIVE_STATES:
                reason = f" ({lease['state_reason']})" if lease.get("state_reason") else ""
                raise LeaseEnded(f"The lease is {lease['state']} instead of active{reason}.", lease)
            if time.monotonic() + interval_s > deadline:
                raise WaitTimedOut(
                    f"The lease is still {lease['state']} after {timeout_s:g} s; it may still start: "
                    f"`voltpark lease {lease_id}` shows where it is.",
                    lease,
                )
            time.sleep(interval_s)

    # --- SSH keys, invoices

    def ssh_keys(self) -> list[Json]:
        """The caller's SSH public keys (installed on the nodes of the leases booked with them)."""
        return self._request("GET", "ssh-keys/")

    def ssh_key_add(self, *, public_key: str, name: str = "") -> Json:
        return self._request("POST", "ssh-keys/", json={"public_key": public_key, "name": name})

    def ssh_key_remove(self, key_id: str) -> None:
        self._request("DELETE", f"ssh-keys/{key_id}/")

    def balance(self) -> Json:
        """The organization's balance, credit, spend rate and runway (owners and finance members)."""
        return self._request("GET", "balance/")

    def invoices(self) -> list[Json]:
        """The organization's invoices, newest first (owners and finance members)."""
        return self._all_pages("invoices/", {})

    # --- HTTP

    def _post(self, path: str, body: Json | None) -> Any:
        # One key for every attempt of this call: a retry after a lost answer replays the first.
        return self._request("POST", path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})

    def _all_pages(self, path: str, params: dict[str, Any]) -> list[Json]:
        rows: list[Json] = []
        while True:
            page = self._request("GET", path, params={**params, "limit": PAGE_SIZE, "offset": len(rows)})
            rows.extend(page["results"])
            if not page["results"] or len(rows) >= page["count"]:
                return rows

    def _request(self, method: str, path: str, **options: Any) -> Any:
        retryable = method == "GET" or "Idempotency-Key" in options.get("headers", {})
        for attempt in range(RETRIES + 1):
            try:
                response = self._http.request(method, path, **options)
                break
            except httpx.TransportError as error:
                if not retryable or attempt == RETRIES:
                    raise ConnectionFailed(
                        f"Could not reach {self.url}: {error or type(error).__name__}."
                    ) from error
                time.sleep(RETRY_PAUSE_S * (attempt + 1))
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return None if response.status_code == 204 else response.json()


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"{value} has no time zone: give an aware datetime.")
    return value.isoformat()
