"""A Stripe-compatible HTTP server on loopback for the tests, reached through the official SDK.

localstripe serves what it covers (customers, payment methods, intents); a few endpoints it
lacks or gets wrong (invoices without a subscription, `collection_method`, invoice items on a given
invoice, finalize) are served here, and every create honours and records its idempotency key, as
Stripe does: the same key gives back the first response.
"""

import asyncio
import json
import secrets
import threading
import time
import warnings
from typing import Any

from aiohttp import web

# localstripe registers its 59 routes with plain (non-async) handlers when its server module is
# imported, and aiohttp warns about each: "Bare functions are deprecated". Its code, not ours (the
# node agent's handlers are all coroutines, tests/nodeagent/test_http_api.py checks): silenced for
# this import only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Bare functions are deprecated", DeprecationWarning)
    from localstripe import resources as localstripe_resources
    from localstripe import server as localstripe_server


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"type": "invalid_request_error", "message": message}}, status=status)


class FakeStripe:
    """The server, its state, and controls a test uses to play the customer (paying an invoice)."""

    def __init__(self) -> None:
        self.idempotency_keys: list[tuple[str, str]] = []
        self.invoices: dict[str, dict[str, Any]] = {}
        self._responses: dict[str, web.Response] = {}
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle
    def start(self) -> "FakeStripe":
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)
        return self

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self._app())
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def reset(self) -> None:
        self.idempotency_keys.clear()
        self.invoices.clear()
        self._responses.clear()
        dict.clear(localstripe_resources.store)

    # --- what a test does as the customer or as Stripe
    def pay(self, invoice_id: str) -> None:
        invoice = self.invoices[invoice_id]
        invoice["status"], invoice["amount_paid"] = "paid", invoice["amount_due"]
        invoice["status_transitions"]["paid_at"] = int(time.time())

    def customers(self) -> list[str]:
        return [key for key in localstripe_resources.store if key.startswith("customer:")]

    # --- the application
    def _app(self) -> web.Application:
        app = web.Application(
            middlewares=[
                localstripe_server.error_middleware,
                localstripe_server.auth_middleware,
                self._idempotency,
            ]
        )
        app.router.add_post("/v1/invoices", self._invoice_create)
        app.router.add_get("/v1/invoices/{id}", self._invoice_get)
        app.router.add_post("/v1/invoices/{id}/finalize", self._invoice_finalize)
        app.router.add_post("/v1/invoiceitems", self._item_create)
        for route in localstripe_server.app.router.routes():
            canonical = route.resource.canonical if route.resource else ""
            if not canonical.startswith(("/v1/invoice", "/v1/invoiceitems")):
                app.router.add_route(route.method, canonical, route.handler)
        return app

    @web.middleware
    async def _idempotency(self, request: web.Request, handler: Any) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        self.idempotency_keys.append((request.path, key))
        if key in self._responses:
            first = self._responses[key]
            return web.Response(body=first.body, status=first.status, content_type="application/json")
        response = await handler(request)
        if isinstance(response, web.Response):
            self._responses[key] = response
        return response

    async def _invoice_create(self, request: web.Request) -> web.Response:
        data = await localstripe_server.get_post_data(request) or {}
        if f"customer:{data.get('customer')}" not in localstripe_resources.store:
            return _error(404, f"No such customer: {data.get('customer')!r}")
        invoice_id = "in_" + secrets.token_hex(7)
        self.invoices[invoice_id] = {
            "id": invoice_id,
            "object": "invoice",
            "customer": data["customer"],
            "status": "draft",
            "collection_method": data.get("collection_method", "charge_automatically"),
            "currency": data.get("currency", "usd"),
            "metadata": data.get("metadata", {}),
            "lines": {"object": "list", "data": []},
            "amount_due": 0,
            "amount_paid": 0,
            "total": 0,
            "hosted_invoice_url": None,
            "status_transitions": {"finalized_at": None, "paid_at": None},
            "livemode": False,
            "created": int(time.time()),
        }
        return web.json_response(self.invoices[invoice_id])

    async def _invoice_get(self, request: web.Request) -> web.Response:
        invoice = self.invoices.get(request.match_info["id"])
        return web.json_response(invoice) if invoice else _error(404, "No such invoice")

    async def _invoice_finalize(self, request: web.Request) -> web.Response:
        invoice = self.invoices.get(request.match_info["id"])
        if invoice is None or invoice["status"] != "draft":
            return _error(400, "This invoice cannot be finalized")
        invoice["status"], invoice["hosted_invoice_url"] = "open", f"{self.url}/hosted/{invoice['id']}"
        invoice["status_transitions"]["finalized_at"] = int(time.time())
        return web.json_response(invoice)

    async def _item_create(self, request: web.Request) -> web.Response:
        data = await localstripe_server.get_post_data(request) or {}
        invoice = self.invoices.get(data.get("invoice", ""))
        if invoice is None or invoice["status"] != "draft":
            return _error(400, "Invoice items can only be added to a draft invoice")
        item = {
            "id": "ii_" + secrets.token_hex(7),
            "object": "invoiceitem",
            "customer": data["customer"],
            "invoice": invoice["id"],
            "amount": int(data["amount"]),
            "currency": data.get("currency", "usd"),
            "description": data.get("description", ""),
        }
        invoice["lines"]["data"].append(item)
        invoice["total"] = invoice["amount_due"] = sum(line["amount"] for line in invoice["lines"]["data"])
        return web.json_response(item)


def signed_event(payload: dict[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and Stripe-Signature header Stripe would send, signed with the SDK's own helper."""
    import stripe

    body = json.dumps(payload)
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body}", secret)
    return body.encode(), f"t={timestamp},v1={signature}"
