"""A stand-in for GitHub's and Google's sign-in endpoints, on loopback: only what allauth's providers
call (authorize, token, GitHub's user and emails, Google's userinfo), answering as the real services
document. The suite's settings point the providers here (tests/settings.py, SSO_TEST_PORTS).

`StandIn.person` is who signs in at the provider next; `StandIn.calls` records every request the
platform made, so a test can see the code was exchanged with the right secret.
"""

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.test import Client

CLIENTS = {
    "github": ("voltpark-test-github", "github-test-secret"),
    "google": ("voltpark-test-google.apps.googleusercontent.com", "google-test-secret"),
}


@dataclass
class Person:
    """Someone with an account at the provider."""

    uid: str
    email: str
    name: str
    email_verified: bool = True


@dataclass
class StandIn:
    """The running stand-in: its base URL, who signs in next, and what it was asked."""

    base: str
    person: Person | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    codes: dict[str, tuple[str, Person, str]] = field(default_factory=dict)
    tokens: dict[str, Person] = field(default_factory=dict)


_reserved: list[socket.socket] = []


def reserve_port(ports: str) -> int:
    """Bind the first free port of `ports` ("18690-18699") and hold it for the run: nothing else (an
    outgoing connection's local port among them) can take it before the stand-in serves on it."""
    first, last = (int(p) for p in ports.split("-"))
    for port in range(first, last + 1):
        held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            held.bind(("127.0.0.1", port))
        except OSError:
            held.close()
            continue
        held.listen(16)
        _reserved.append(held)
        return port
    raise RuntimeError(f"no free port for the SSO stand-in in {ports} (SSO_TEST_PORTS)")


def serve(port: int) -> tuple[ThreadingHTTPServer, StandIn]:
    """Start the stand-in on 127.0.0.1:`port` (on the socket reserved for it, when there is one) in a
    thread; stop it with `server.shutdown()` (the reserved socket stays held for the next test)."""
    state = StandIn(base=f"http://127.0.0.1:{port}")
    handler = type("Handler", (_Handler,), {"state": state})
    held = next((s for s in _reserved if s.getsockname()[1] == port), None)
    server = ThreadingHTTPServer(("127.0.0.1", port), handler, bind_and_activate=held is None)
    if held is not None:
        server.socket.close()
        server.socket = held
        server.server_close = lambda: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


def at_provider(url: str) -> str:
    """Open the provider's authorize URL as the person's browser would, and return where it sends them."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=5)
    connection.request("GET", f"{parts.path}?{parts.query}")
    answer = connection.getresponse()
    assert answer.status == 302, answer.read()
    return answer.getheader("Location") or ""


def sign_in_with(client: Client, stand_in: StandIn, name: str, person: Person, **query: str):
    """Press "Sign in with <name>", approve at the provider as `person`, and come back: the answer."""
    stand_in.person = person
    start = client.post(f"/{name}/login/", query_params=query)
    assert start.status_code == 302 and start["Location"].startswith(f"{stand_in.base}/{name}/")
    back = urlsplit(at_provider(start["Location"]))
    assert back.path == f"/{name}/login/callback/"
    return client.get(f"{back.path}?{back.query}")


class _Handler(BaseHTTPRequestHandler):
    state: StandIn

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.state.calls.append({"method": "GET", "path": url.path, "query": query})
        routes = {
            "/github/login/oauth/authorize": lambda: self._authorize("github", query),
            "/google/o/oauth2/v2/auth": lambda: self._authorize("google", query),
            "/github/api/v3/user": self._github_user,
            "/github/api/v3/user/emails": self._github_emails,
            "/google/oauth2/v2/userinfo": self._google_userinfo,
        }
        routes.get(url.path, lambda: self._json({"message": "Not Found"}, 404))()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        path = urlsplit(self.path).path
        self.state.calls.append({"method": "POST", "path": path, "form": form})
        provider = {"/github/login/oauth/access_token": "github", "/google/token": "google"}.get(path)
        if provider is None:
            self._json({"message": "Not Found"}, 404)
        else:
            self._token(provider, form)

    def _authorize(self, provider: str, query: dict[str, str]) -> None:
        """The person (already signed in at the provider) approves: back to the platform with a code."""
        if query.get("client_id") != CLIENTS[provider][0] or self.state.person is None:
            self._json({"error": "invalid_client"}, 400)
            return
        code = secrets.token_urlsafe(16)
        self.state.codes[code] = (provider, self.state.person, query["redirect_uri"])
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        self.send_response(302)
        self.send_header("Location", back)
        self.end_headers()

    def _token(self, provider: str, form: dict[str, str]) -> None:
        """A code exchanged once, by the client with its secret, for the redirect it was issued to."""
        issued = self.state.codes.pop(form.get("code", ""), None)
        client_id, secret = CLIENTS[provider]
        if (
            issued is None
            or issued[0] != provider
            or form.get("client_id") != client_id
            or form.get("client_secret") != secret
            or form.get("redirect_uri") != issued[2]
        ):
            self._json({"error": "bad_verification_code"}, 400)
            return
        person = issued[1]
        access = secrets.token_urlsafe(24)
        self.state.tokens[access] = person
        answer: dict[str, Any] = {"access_token": access, "token_type": "bearer", "scope": "user:email"}
        if provider == "google":
            answer.update(expires_in=3599, id_token=self._id_token(person, client_id, secret))
        self._json(answer)

    def _id_token(self, person: Person, client_id: str, secret: str) -> str:
        # allauth reads the id_token it fetched itself from the token endpoint without checking its
        # signature (OpenID Connect Core 3.1.3.7: the TLS channel vouches for it); it checks the
        # issuer, the audience and the expiry, which are Google's here.
        now = int(time.time())
        claims = {
            "iss": self.state.base + "/google",
            "aud": client_id,
            "sub": person.uid,
            "email": person.email,
            "email_verified": person.email_verified,
            "name": person.name,
            "iat": now,
            "exp": now + 3600,
        }
        return _jwt_hs256(claims, secret)

    def _bearer(self, scheme: str) -> Person | None:
        words = (self.headers.get("Authorization") or "").split()
        return self.state.tokens.get(words[1]) if len(words) == 2 and words[0] == scheme else None

    def _github_user(self) -> None:
        person = self._bearer("token")
        if person is None:
            self._json({"message": "Requires authentication"}, 401)
            return
        login = person.email.split("@")[0]
        self._json({"id": int(person.uid), "login": login, "name": person.name, "email": person.email})

    def _github_emails(self) -> None:
        person = self._bearer("token")
        if person is None:
            self._json({"message": "Requires authentication"}, 401)
            return
        self._json([{"email": person.email, "primary": True, "verified": person.email_verified}])

    def _google_userinfo(self) -> None:
        person = self._bearer("Bearer")
        if person is None:
            self._json({"error": "invalid_token"}, 401)
            return
        self._json({"id": person.uid, "email": person.email, "verified_email": person.email_verified})

    def _json(self, body: object, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _jwt_hs256(claims: dict[str, Any], secret: str) -> str:
    """A JSON Web Token signed with HMAC-SHA256 (RFC 7519, 7515)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{part(signature)}"
