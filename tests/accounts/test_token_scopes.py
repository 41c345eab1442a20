"""API tokens with scopes (read, book, billing) and an optional expiry: a token does only what its
scopes and its user's role both allow; tokens listed, made and revoked through the API too."""

from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient

from accounts.api.permissions import ScopedPermission
from accounts.models import ApiToken, AuditEntry, User
from accounts.services.tokens import api_token_create
from clusters.models import Lease
from tests.clusters.helpers import build_fleet, reserved


def _client(user: User, *scopes: str, expires_at=None, organization=None) -> APIClient:
    if organization is None:
        organization = user.memberships.first().organization
    issued = api_token_create(
        user=user, organization=organization, name="t", scopes=scopes or None, expires_at=expires_at
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    return client


def test_a_read_token_reads_leases_but_cannot_book(alice, acme) -> None:
    build_fleet()
    client = _client(alice, "read")
    assert client.get("/api/v1/leases/").status_code == 200
    refused = client.post("/api/v1/leases/", reserved(1), format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "scope"
    assert refused.json()["needed"] == "book" and refused.json()["scopes"] == ["read"]
    assert not Lease.objects.filter(organization=acme).exists()


def test_a_read_token_may_ask_for_a_quote(alice) -> None:
    build_fleet()
    assert _client(alice, "read").post("/api/v1/quotes/", reserved(1), format="json").status_code == 200


def test_a_book_token_books_and_releases_but_cannot_see_money(alice, acme) -> None:
    build_fleet()
    client = _client(alice, "book")
    booked = client.post("/api/v1/leases/", reserved(1), format="json")
    assert booked.status_code == 201
    assert client.post(f"/api/v1/leases/{booked.json()['id']}/cancel/").status_code == 200
    for path in ("/api/v1/invoices/", "/api/v1/balance/", "/api/v1/exports/invoices.csv", "/api/v1/usage/"):
        refused = client.get(path)
        assert (refused.status_code, refused.json()["code"]) == (403, "scope"), path
    # Reading needs `read`, even one's own leases.
    assert client.get("/api/v1/leases/").json()["code"] == "scope"


def test_a_billing_token_sees_invoices_and_nothing_else(alice) -> None:
    client = _client(alice, "billing")
    assert client.get("/api/v1/invoices/").status_code == 200
    assert client.get("/api/v1/balance/").status_code == 200
    assert client.get("/api/v1/leases/").json()["code"] == "scope"


def test_scopes_never_widen_a_role(bob, fiona, acme) -> None:
    build_fleet()
    member_refused = _client(bob).get("/api/v1/invoices/")  # every scope, but a member sees no invoices
    assert member_refused.status_code == 403 and member_refused.json()["code"] != "scope"
    finance_refused = _client(fiona).post("/api/v1/leases/", reserved(1), format="json")
    assert finance_refused.status_code == 403 and finance_refused.json()["code"] != "scope"
    assert not Lease.objects.filter(organization=acme).exists()


def test_an_expired_token_gets_401_token_expired_and_is_not_touched(alice, acme) -> None:
    issued = api_token_create(
        user=alice, organization=acme, name="short", expires_at=timezone.now() + timedelta(minutes=1)
    )
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    refused = client.get("/api/v1/leases/")
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_expired" and "expired" in refused.json()["detail"]
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at is None


def test_a_token_before_its_expiry_works(alice) -> None:
    client = _client(alice, expires_at=timezone.now() + timedelta(days=1))
    assert client.get("/api/v1/leases/").status_code == 200


def test_the_api_lists_the_callers_tokens_only(alice, bob, acme) -> None:
    api_token_create(user=bob, organization=acme, name="bobs")
    client = _client(alice)
    api_token_create(user=alice, organization=acme, name="laptop", scopes=["read"])
    page = client.get("/api/v1/tokens/").json()
    assert page["count"] == 2
    laptop = next(t for t in page["results"] if t["name"] == "laptop")
    assert laptop["scopes"] == ["read"] and laptop["organization"] == "acme-ai" and laptop["is_active"]
    assert "token_hash" not in laptop and "secret" not in laptop
    # The token used for the request has just been used.
    assert next(t for t in page["results"] if t["name"] == "t")["last_used_at"] is not None


def test_the_api_makes_a_token_with_scopes_and_expiry_and_shows_the_secret_once(alice, acme) -> None:
    client = _client(alice)
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    made = client.post(
        "/api/v1/tokens/", {"name": "ci", "scopes": ["billing", "read"], "expires_at": expires.isoformat()}
    )
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["secret"].startswith("vp_") and body["scopes"] == ["read", "billing"]
    token = ApiToken.objects.get(public_id=body["id"])
    assert (token.scopes, token.expires_at, token.organization) == (["read", "billing"], expires, acme)
    audit = AuditEntry.objects.get(action="api_token.create", object_id=body["id"])
    assert audit.after["scopes"] == ["read", "billing"]
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {body['secret']}")
    assert fresh.get("/api/v1/invoices/").status_code == 200
    assert "secret" not in client.get("/api/v1/tokens/").json()["results"][0]


def test_the_api_revokes_a_token_and_it_stops_working(alice) -> None:
    client = _client(alice)
    made = client.post("/api/v1/tokens/", {"name": "doomed"}).json()
    assert client.delete(f"/api/v1/tokens/{made['id']}/").status_code == 204
    doomed = APIClient()
    doomed.credentials(HTTP_AUTHORIZATION=f"Bearer {made['secret']}")
    assert doomed.get("/api/v1/leases/").status_code == 401
    assert ApiToken.objects.get(public_id=made["id"]).revoked_at is not None


def test_nobody_revokes_anothers_token(alice, bob, acme) -> None:
    bobs = api_token_create(user=bob, organization=acme, name="bobs").token
    assert _client(alice).delete(f"/api/v1/tokens/{bobs.public_id}/").status_code == 404
    assert ApiToken.objects.get(pk=bobs.pk).revoked_at is None


def test_a_token_cannot_make_a_stronger_token(alice) -> None:
    assert _client(alice, "read").post("/api/v1/tokens/", {"name": "x"}).json()["code"] == "scope"
    wider = _client(alice, "book").post("/api/v1/tokens/", {"name": "x", "scopes": ["book", "billing"]})
    assert (wider.status_code, wider.json()["code"], wider.json()["needed"]) == (403, "scope", "billing")
    short_lived = _client(alice, expires_at=timezone.now() + timedelta(days=1))
    forever = short_lived.post("/api/v1/tokens/", {"name": "x"})
    assert forever.status_code == 400 and "expires_at" in forever.json()["fields"]
    assert not ApiToken.objects.filter(name="x").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["admin"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "expires_at": "2027-02-30T00:00:00Z"}, "expires_at"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_token_requests_are_400_naming_the_field(alice, body, field) -> None:
    refused = _client(alice).post("/api/v1/tokens/", body)
    assert refused.status_code == 400 and field in refused.json()["fields"], refused.json()
    assert not ApiToken.objects.filter(name="x").exists()


def test_the_tokens_page_makes_a_scoped_expiring_token_and_shows_scopes_expiry_and_last_use(
    client, alice, acme
) -> None:
    client.force_login(alice)
    day = (timezone.now() + timedelta(days=10)).date()
    client.post("/account/tokens/", {"name": "reader", "scopes": ["read"], "expires_at": day.isoformat()})
    token = ApiToken.objects.get(user=alice, name="reader")
    assert token.scopes == ["read"] and token.expires_at.date() == day
    used = timezone.now().replace(second=0, microsecond=0)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=used)
    page = client.get("/account/tokens/").content.decode()
    assert f"{day:%Y-%m-%d} 00:00" in page and f"{used:%Y-%m-%d %H:%M}" in page
    assert '<td class="token-scopes">read</td>' in page


def test_the_tokens_page_refuses_a_token_without_scopes_or_with_a_past_expiry(client, alice) -> None:
    client.force_login(alice)
    none = client.post("/account/tokens/", {"name": "x"})
    assert none.status_code == 200 and "This field is required" in none.content.decode()
    past = client.post("/account/tokens/", {"name": "x", "scopes": ["read"], "expires_at": "2020-01-01"})
    assert "in the future" in past.content.decode()
    assert not ApiToken.objects.filter(name="x").exists()


SCHEMA_PAGES = {"api/v1/schema/", "api/v1/docs/"}  # public, like the documentation they are


def _api_views(patterns=None):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry.url_patterns)
        elif isinstance(entry, URLPattern) and str(entry.pattern).startswith("api/v1/"):
            view = getattr(entry.callback, "cls", None)
            if view is not None and str(entry.pattern) not in SCHEMA_PAGES:
                yield str(entry.pattern), view


def test_every_api_view_holds_tokens_to_their_scopes() -> None:
    views = list(_api_views())
    assert len(views) > 40
    unscoped = [
        path
        for path, view in views
        if not all(
            issubclass(permission, (ScopedPermission, AllowAny)) for permission in view.permission_classes
        )
        or not view.permission_classes
    ]
    assert unscoped == []
    open_to_all = [path for path, view in views if AllowAny in view.permission_classes]
    assert open_to_all == ["api/v1/stripe/webhook/"]  # signed by Stripe, no token
