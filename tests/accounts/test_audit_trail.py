"""Owners read and export their organization's audit trail, on a page and over the API: its changes
and its members' sign-ins while they are members, filtered by date range and action, a page at a
time; members and finance are refused, and other organizations' rows never show."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.choices import Role
from accounts.models import AuditEntry, Membership, User
from accounts.services.audit import audit_entry
from tests.accounts.helpers import PASSWORD, log_in
from tests.factories import UserFactory
from tests.helpers import api_client_for


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def row(
    action: str, *, obj, organization=None, actor=None, when: datetime | None = None, **after
) -> AuditEntry:
    """An audit row as a service writes it, at `when` (audit rows cannot be changed once written)."""
    entry = audit_entry(actor=actor, action=action, obj=obj, organization=organization, after=after)
    entry.at = when or entry.at
    entry.save()
    return entry


@pytest.fixture
def trail(acme, globex, alice, bob, charlie):
    """Acme's rows on three days, members' sign-ins, and rows that are not Acme's."""
    row("organization.update", obj=acme, organization=acme, actor=alice, when=at("2026-11-01T10:00"))
    row("api_token.create", obj=acme, organization=acme, actor=bob, when=at("2026-11-15T10:00"))
    row("user.login", obj=bob, actor=bob, when=at("2026-11-20T09:00"), method="password")
    row("user.login_failed", obj=bob, when=at("2026-11-20T08:59"), ip="203.0.113.9")
    row("organization.update", obj=globex, organization=globex, actor=charlie, when=at("2026-11-15T11:00"))
    row("user.login", obj=charlie, actor=charlie, when=at("2026-11-20T09:00"))
    Membership.objects.filter(user=bob).update(created_at=at("2026-10-01T00:00"))
    Membership.objects.filter(user=alice).update(created_at=at("2026-10-01T00:00"))


@pytest.fixture
def api(client, alice):
    """Alice, Acme's owner, signed in (a session: making her a token would itself be an audit row)."""
    client.force_login(alice)
    return client


def actions(answer) -> list[str]:
    return [entry["action"] for entry in answer.json()["results"]]


def test_an_owner_reads_the_trail_newest_first_with_the_members_sign_ins(trail, api) -> None:
    answer = api.get("/api/v1/audit/")
    assert answer.status_code == 200
    assert actions(answer)[:4] == [
        "user.login",
        "user.login_failed",
        "api_token.create",
        "organization.update",
    ]
    first = answer.json()["results"][0]
    assert (first["actor"], first["object_type"], first["after"]) == (
        "bob@acme.example",
        "User",
        {"method": "password"},
    )


def test_other_organizations_rows_and_strangers_sign_ins_never_show(trail, api, acme, charlie) -> None:
    answer = api.get("/api/v1/audit/", {"limit": 1000})
    seen = answer.json()["results"]
    assert not [e for e in seen if e["actor"] == charlie.email]
    assert {e["object_id"] for e in seen if e["object_type"] == "Organization"} == {str(acme.public_id)}


def test_a_members_sign_ins_from_before_they_joined_do_not_show(acme, api) -> None:
    dora = UserFactory.create(email="dora@acme.example")
    row("user.login", obj=dora, actor=dora, when=timezone.now() - timedelta(days=3))
    Membership.objects.create(user=dora, organization=acme, role=Role.MEMBER)
    row("user.login", obj=dora, actor=dora)
    logins = [e for e in api.get("/api/v1/audit/").json()["results"] if e["actor"] == dora.email]
    assert len(logins) == 1


def test_the_trail_filters_by_date_range_and_action(trail, api) -> None:
    assert actions(api.get("/api/v1/audit/", {"since": "2026-11-15", "until": "2026-11-15"})) == [
        "api_token.create"
    ]
    assert actions(api.get("/api/v1/audit/", {"action": "user.login"})) == ["user.login"]
    assert actions(api.get("/api/v1/audit/", {"action": "user.", "until": "2026-11-30"})) == [
        "user.login",
        "user.login_failed",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "2027-02-30"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"since": "2026-11-20", "until": "2026-11-01"}, "until"),
        ({"action": "DROP TABLE"}, "action"),
        ({"action": "x" * 61}, "action"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(trail, api, query, field) -> None:
    for path in ("/api/v1/audit/", "/api/v1/audit/export.csv"):
        answer = api.get(path, query)
        assert answer.status_code == 400, (path, answer.content)
        assert field in answer.json()["fields"]


def test_a_page_beyond_the_bounds_is_a_400_naming_it(trail, api) -> None:
    answer = api.get("/api/v1/audit/", {"limit": "99999999999999999999"})
    assert answer.status_code == 400 and "limit" in answer.json()["fields"]


def test_the_trail_comes_a_page_at_a_time(trail, api) -> None:
    everything = api.get("/api/v1/audit/", {"limit": 1000}).json()["results"]
    first = api.get("/api/v1/audit/", {"limit": 2}).json()
    second = api.get("/api/v1/audit/", {"limit": 2, "offset": 2}).json()
    assert first["count"] == len(everything) >= 4
    assert first["results"] + second["results"] == everything[:4] and first["next"]


def test_the_csv_export_holds_the_filtered_trail(trail, acme, alice, api) -> None:
    answer = api.get("/api/v1/audit/export.csv", {"since": "2026-11-01"})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    assert 'filename="audit-acme-ai.csv"' in answer["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert rows[0] == ["at", "action", "actor", "object_type", "object_id", "before", "after", "request_id"]
    assert [r[1] for r in rows[1:]] == [
        e["action"] for e in api.get("/api/v1/audit/", {"since": "2026-11-01"}).json()["results"]
    ]
    older = api.get("/api/v1/audit/export.csv", {"until": "2026-11-01"})
    body = b"".join(older.streaming_content).decode()
    assert body.count("\r\n") == 2  # the header and the one row of that day


def test_a_cell_that_would_be_a_formula_is_written_as_text(acme, api) -> None:
    mallory = UserFactory.create(email="mallory@acme.example")
    Membership.objects.create(user=mallory, organization=acme, role=Role.MEMBER)
    entry = audit_entry(actor=mallory, action="user.login", obj=mallory)
    entry.request_id = "=1+1"
    entry.save()
    body = b"".join(api.get("/api/v1/audit/export.csv").streaming_content).decode()
    assert "'=1+1" in body and ",=1+1" not in body


@pytest.mark.parametrize("who", ["bob", "fiona"])
def test_members_and_finance_are_refused_the_trail(trail, everyone, who, client) -> None:
    token = api_client_for(everyone[who])
    assert token.get("/api/v1/audit/").status_code == 403
    assert token.get("/api/v1/audit/export.csv").status_code == 403
    client.force_login(everyone[who])
    assert client.get("/organization/audit/").status_code == 403


def test_the_owners_page_shows_the_trail_filtered_with_a_download(client, trail, alice) -> None:
    client.force_login(alice)
    page = client.get("/organization/audit/", {"action": "user."})
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-action="user.login"' in html and 'data-action="api_token.create"' not in html
    assert 'href="/api/v1/audit/export.csv?action=user."' in html
    assert client.get("/api/v1/audit/export.csv", {"action": "user."}).status_code == 200  # the session works


def test_the_page_names_a_bad_filter_and_shows_nothing(client, trail, alice) -> None:
    client.force_login(alice)
    page = client.get("/organization/audit/", {"since": "2027-02-30"})
    assert page.status_code == 400
    html = page.content.decode()
    assert 'id="id_since"' in html and "Enter a valid date" in html and "data-action=" not in html


def test_log_in_log_out_and_a_wrong_password_land_in_the_trail(client, acme, alice, bob) -> None:
    client.post("/login/", {"login": bob.email, "password": "wrong"})
    log_in(client, bob)
    client.post("/logout/")
    seen = actions(api_client_for(alice).get("/api/v1/audit/", {"action": "user."}))
    assert seen == ["user.logout", "user.login", "user.login_failed"]  # the token's row is not a user.*
    assert User.objects.get(pk=bob.pk).check_password(PASSWORD)


def test_an_owners_token_with_the_read_scope_reads_the_trail(trail, alice) -> None:
    answer = api_client_for(alice).get("/api/v1/audit/", {"action": "api_token."})
    assert answer.status_code == 200 and actions(answer) == ["api_token.create", "api_token.create"]
