"""A Stripe-compatible HTTP server on loopback for the tests, reached through the official SDK.

localstripe serves what it covers (customers, payment methods and its test cards, PaymentIntents
off-session, charges, refunds); what it lacks or gets wrong is served here: invoices without a
subscription (`collection_method`, items on a given invoice, finalize, pay, void), Checkout sessions
(setup and payment mode, with a hosted page that plays the customer and then sends the signed
webhook, as Stripe does), setup intents of those sessions, credit notes and disputes. Every create
honours and records its idempotency key, as Stripe does: the same key gives back the first response.
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
        self.sessions: dict[str, dict[str, Any]] = {}
        self.setup_intents: dict[str, dict[str, Any]] = {}
        self.credit_notes: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        # Where the hosted pages send their webhook (the live server in browser tests), and its secret.
        self.webhook_url = ""
        self.webhook_secret = ""
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
        for found in (self.invoices, self.sessions, self.setup_intents, self.credit_notes, self.disputes):
            found.clear()
        self._responses.clear()
        self.webhook_url = self.webhook_secret = ""
        dict.clear(localstripe_resources.store)

    # --- what a test does as the customer or as Stripe
    def pay(self, invoice_id: str) -> None:
        invoice = self.invoices[invoice_id]
        invoice["status"], invoice["amount_paid"] = "paid", invoice["amount_due"]
        invoice["status_transitions"]["paid_at"] = int(time.time())

    def complete(self, session_id: str, card: str = "4242424242424242") -> dict[str, Any]:
        """The customer enters `card` on the session's page: a card saved, or a payment made.

        Run on the server's loop: localstripe schedules its own webhook tasks on the running loop.
        """

        async def on_loop() -> dict[str, Any]:
            return self._complete(session_id, card)

        return asyncio.run_coroutine_threadsafe(on_loop(), self._loop).result(10)

    def _complete(self, session_id: str, card: str) -> dict[str, Any]:
        session = self.sessions[session_id]
        method = localstripe_resources.PaymentMethod(
            type="card", card={"number": card, "exp_month": "12", "exp_year": "2030", "cvc": "123"}
        )
        localstripe_resources.PaymentMethod._api_attach(method.id, customer=session["customer"])
        if session["mode"] == "setup":
            intent_id = "seti_" + secrets.token_hex(7)
            self.setup_intents[intent_id] = {
                "id": intent_id,
                "object": "setup_intent",
                "status": "succeeded",
                "payment_method": method.id,
                "customer": session["customer"],
                "usage": "off_session",
            }
            session["setup_intent"] = intent_id
        else:
            intent = localstripe_resources.PaymentIntent._api_create(
                amount=session["amount_total"],
                currency="usd",
                customer=session["customer"],
                payment_method=method.id,
                confirm=True,
            )
            session["payment_intent"] = intent.id
            session["payment_status"] = "paid" if intent.status == "succeeded" else "unpaid"
        session["status"] = "complete"
        return session

    def dispute(self, charge_id: str, status: str = "needs_response") -> dict[str, Any]:
        """The cardholder disputes a charge (or the dispute closes with `status`)."""
        charge = localstripe_resources.Charge._api_retrieve(charge_id)
        found = next((d for d in self.disputes.values() if d["charge"] == charge_id), None)
        if found is None:
            found = {
                "id": "dp_" + secrets.token_hex(7),
                "object": "dispute",
                "charge": charge_id,
                "amount": charge.amount,
                "currency": "usd",
                "reason": "fraudulent",
            }
            self.disputes[found["id"]] = found
        found["status"] = status
        return found

    def customers(self) -> list[str]:
        return [key for key in localstripe_resources.store if key.startswith("customer:")]

    # --- the application
    def _app(self) -> web.Application:
        app = web.Application(
            middlewares=[
                localstripe_server.error_middleware,
                self._auth,
                self._idempotency,
            ]
        )
        app.router.add_post("/v1/invoices", self._invoice_create)
        app.router.add_get("/v1/invoices/{id}", self._invoice_get)
        app.router.add_post("/v1/invoices/{id}/finalize", self._invoice_finalize)
        app.router.add_post("/v1/invoiceitems", self._item_create)
        app.router.add_post("/v1/invoices/{id}/pay", self._invoice_pay)
        app.router.add_post("/v1/invoices/{id}/void", self._invoice_void)
        app.router.add_post("/v1/checkout/sessions", self._session_create)
        app.router.add_get("/v1/checkout/sessions/{id}", self._session_get)
        app.router.add_get("/v1/setup_intents/{id}", self._found(self.setup_intents, "setup intent"))
        app.router.add_post("/v1/credit_notes", self._credit_note_create)
        app.router.add_get("/v1/credit_notes/{id}", self._found(self.credit_notes, "credit note"))
        app.router.add_get("/v1/disputes/{id}", self._found(self.disputes, "dispute"))
        app.router.add_get("/pay/{id}", self._hosted_page)
        app.router.add_post("/pay/{id}", self._hosted_submit)
        ours = ("/v1/invoice", "/v1/invoiceitems", "/v1/checkout", "/v1/setup_intents", "/v1/credit_notes")
        for route in localstripe_server.app.router.routes():
            canonical = route.resource.canonical if route.resource else ""
            if not canonical.startswith(ours):
                app.router.add_route(route.method, canonical, route.handler)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The API needs the secret key (localstripe checks it); the hosted pages are the customer's."""
        if request.path.startswith("/pay/"):
            return await handler(request)
        return await localstripe_server.auth_middleware(request, handler)

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

    def _found(self, table: dict[str, dict[str, Any]], what: str) -> Any:
        async def get(request: web.Request) -> web.Response:
            found = table.get(request.match_info["id"])
            return web.json_response(found) if found else _error(404, f"No such {what}")

        return get

    async def _invoice_pay(self, request: web.Request) -> web.Response:
        invoice = self.invoices.get(request.match_info["id"])
        data = await localstripe_server.get_post_data(request) or {}
        if invoice is None or invoice["status"] != "open":
            return _error(400, "This invoice cannot be paid")
        intent = localstripe_resources.PaymentIntent._api_create(
            amount=invoice["amount_due"],
            currency="usd",
            customer=invoice["customer"],
            payment_method=data.get("payment_method"),
            confirm=True,
        )
        if intent.status != "succeeded":
            return web.json_response(
                {
                    "error": {
                        "type": "card_error",
                        "code": "card_declined",
                        "message": "Your card was declined.",
                    }
                },
                status=402,
            )
        invoice["status"], invoice["amount_paid"] = "paid", invoice["amount_due"]
        invoice["status_transitions"]["paid_at"] = int(time.time())
        return web.json_response(invoice)

    async def _invoice_void(self, request: web.Request) -> web.Response:
        invoice = self.invoices.get(request.match_info["id"])
        if invoice is None or invoice["status"] != "open":
            return _error(400, "Only an open invoice can be voided")
        invoice["status"] = "void"
        return web.json_response(invoice)

    async def _session_create(self, request: web.Request) -> web.Response:
        data = await localstripe_server.get_post_data(request) or {}
        if f"customer:{data.get('customer')}" not in localstripe_resources.store:
            return _error(404, f"No such customer: {data.get('customer')!r}")
        if data.get("mode") not in ("setup", "payment"):
            return _error(400, "mode must be setup or payment")
        items = data.get("line_items") or []
        total = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
        session_id = "cs_test_" + secrets.token_hex(12)
        self.sessions[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "mode": data["mode"],
            "customer": data["customer"],
            "status": "open",
            "payment_status": "unpaid" if data["mode"] == "payment" else "no_payment_required",
            "amount_total": total if data["mode"] == "payment" else None,
            "currency": "usd",
            "success_url": data.get("success_url", ""),
            "cancel_url": data.get("cancel_url", ""),
            "metadata": data.get("metadata", {}),
            "setup_intent": None,
            "payment_intent": None,
            "url": f"{self.url}/pay/{session_id}",
        }
        return web.json_response(self.sessions[session_id])

    async def _session_get(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        return web.json_response(session) if session else _error(404, "No such checkout session")

    async def _credit_note_create(self, request: web.Request) -> web.Response:
        data = await localstripe_server.get_post_data(request) or {}
        invoice = self.invoices.get(data.get("invoice", ""))
        amount = int(data.get("amount") or 0)
        if invoice is None or invoice["status"] not in ("open", "paid"):
            return _error(400, "A credit note needs an open or paid invoice")
        if not 0 < amount <= invoice["total"]:
            return _error(400, "The credit note's amount must be positive and at most the invoice's total")
        note_id = "cn_" + secrets.token_hex(7)
        self.credit_notes[note_id] = {
            "id": note_id,
            "object": "credit_note",
            "invoice": invoice["id"],
            "amount": amount,
            "memo": data.get("memo", ""),
            "status": "issued",
        }
        if invoice["status"] == "open":
            invoice["amount_due"] = max(0, invoice["amount_due"] - amount)
        return web.json_response(self.credit_notes[note_id])

    async def _hosted_page(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return _error(404, "No such checkout session")
        what = "Save your card" if session["mode"] == "setup" else f"Pay ${session['amount_total'] / 100:.2f}"
        page = (
            # No favicon request: the page is all a browser loads from this server.
            '<!doctype html><title>Stripe Checkout (test)</title><link rel="icon" href="data:,">'
            f"<h1>{what}</h1>"
            f'<form method="post"><label>Card number <input name="card" value="4242424242424242"></label>'
            f'<button type="submit">{what}</button></form>'
        )
        return web.Response(text=page, content_type="text/html")

    async def _hosted_submit(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        session = self._complete(request.match_info["id"], card=str(form.get("card", "4242424242424242")))
        if self.webhook_url:
            await self._send_webhook("checkout.session.completed", session)
        raise web.HTTPSeeOther(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))

    async def _send_webhook(self, kind: str, obj: dict[str, Any]) -> None:
        from aiohttp import ClientSession

        event = {
            "id": "evt_" + secrets.token_hex(8),
            "object": "event",
            "type": kind,
            "data": {"object": obj},
        }
        body, signature = signed_event(event, self.webhook_secret)
        headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
        async with ClientSession() as client:
            await client.post(self.webhook_url, data=body, headers=headers)


def signed_event(payload: dict[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and Stripe-Signature header Stripe would send, signed with the SDK's own helper."""
    import stripe

    body = json.dumps(payload)
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body}", secret)
    return body.encode(), f"t={timestamp},v1={signature}"
