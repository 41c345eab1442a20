"""The `voltpark` command against the real application (in this process, on the test database):
what it prints, the rows it leaves, and the exit code that says what went wrong."""

import stat
from datetime import UTC, datetime, timedelta

import pytest
from voltpark_client import ApiError, Client
from voltpark_client.cli import (
    LEASE_ENDED,
    NOT_ALLOWED,
    NOT_AUTHENTICATED,
    NOT_FOUND,
    OK,
    REFUSED,
    TIMED_OUT,
    UNREACHABLE,
    USAGE,
    main,
)
from voltpark_client.times import parse_time

from accounts.models import SshKey
from accounts.services.ssh_keys import ssh_key_add
from billing.services.invoicing import month_close
from clusters.choices import LeaseKind, LeaseState
from clusters.models import Lease, Region
from clusters.services.booking import lease_book
from tests.accounts.helpers import ALICE_FINGERPRINT, ALICE_KEY
from tests.billing.factories import make_lease


@pytest.fixture
def alice_cli(cli, alice, acme, token_of, seeded_fleet):
    """Alice, owner of Acme (quota 16 GPUs), with her laptop's key, on six nodes (two per region)."""
    ssh_key_add(user=alice, name="laptop", public_key=ALICE_KEY)
    set_quota(acme, 16)
    return cli.as_(token_of(alice))


def set_quota(organization, gpus: int) -> None:
    organization.gpu_quota = gpus
    organization.save(update_fields=["gpu_quota"])


def fill_texas(alice, acme) -> None:
    """Acme's own on-demand lease holds both Texas nodes."""
    set_quota(acme, 100)
    lease_book(
        user=alice, organization=acme, region=Region.objects.get(code="us-tx-1"), gpus=16, kind="on_demand"
    )


def test_regions_lists_each_region_with_its_name_and_the_gpus_free_now(alice_cli) -> None:
    result = alice_cli("regions")
    assert result.code == OK
    lines = result.out.splitlines()
    assert lines[0].split() == ["REGION", "NAME", "STATE", "FREE", "NOW", "GPUS"]
    assert lines[1].split() == ["us-tx-1", "Texas", "1", "Texas", "16", "16"]
    assert [r["code"] for r in alice_cli("regions", "--json").json()] == ["us-tx-1", "us-va-1", "us-wa-1"]


def test_book_books_on_demand_with_all_of_the_callers_keys_and_prints_the_lease(alice_cli, alice) -> None:
    result = alice_cli("book", "--gpus", "8", "--region", "us-va-1")
    assert result.code == OK, result.err
    lease = Lease.objects.get()
    assert (lease.gpus, lease.kind, lease.region.code) == (8, LeaseKind.ON_DEMAND, "us-va-1")
    assert lease.ssh_public_keys == [ALICE_KEY]
    assert (
        f"Booked lease {lease.public_id}: 8 GPUs in Virginia 1 (us-va-1), on demand, scheduled." in result.out
    )
    account = "vp-" + str(lease.public_id).replace("-", "")[:12]
    assert f"ssh {account}@va1-c01-n001" in result.out


def test_book_reserves_a_window_given_in_hours_from_a_start(alice_cli) -> None:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    result = alice_cli(
        "book", "--gpus", "4", "--region", "us-tx-1", "--start", start.isoformat(), "--hours", "3"
    )
    assert result.code == OK, result.err
    lease = Lease.objects.get()
    assert (lease.kind, lease.start, lease.end) == (LeaseKind.RESERVED, start, start + timedelta(hours=3))


def test_book_without_a_region_books_where_the_gpus_fit(alice_cli, alice, acme) -> None:
    fill_texas(alice, acme)
    result = alice_cli("book", "--gpus", "8", "--json")
    assert result.code == OK, result.err
    assert result.json()["region"] == "us-va-1"  # Virginia and Washington tie on free GPUs: by code
    assert Lease.objects.filter(region__code="us-va-1", gpus=8).count() == 1


def test_a_refused_booking_shows_the_apis_sentence_and_books_nothing(alice_cli) -> None:
    result = alice_cli("book", "--gpus", "5", "--region", "us-tx-1")
    assert result.code == USAGE
    assert (
        result.err == "gpus: Book 1, 2, 4 or 8 GPUs on one node, or a multiple of 8 (whole nodes) above 8.\n"
    )
    assert not Lease.objects.exists()


def test_over_quota_exits_not_allowed_with_the_quota_sentence(alice_cli) -> None:
    result = alice_cli("book", "--gpus", "24", "--region", "us-tx-1")
    assert result.code == NOT_ALLOWED
    assert "your organization's quota is 16" in result.err
    assert not Lease.objects.exists()


def test_no_capacity_in_the_region_exits_refused_and_json_carries_the_apis_body(
    alice_cli, alice, acme
) -> None:
    fill_texas(alice, acme)
    result = alice_cli("book", "--gpus", "8", "--region", "us-tx-1", "--json")
    assert result.code == REFUSED
    assert result.err.startswith("8 GPUs cannot be placed in this region for that window")
    assert result.json()["code"] == "no_capacity" and result.json()["max_gpus_available"] == 0
    assert Lease.objects.count() == 1


def test_booking_without_an_ssh_key_is_refused_before_anything_is_booked(
    cli, bob, token_of, seeded_fleet
) -> None:
    result = cli.as_(token_of(bob))("book", "--gpus", "1", "--region", "us-tx-1")
    assert result.code == USAGE
    assert "You have no SSH key" in result.err and "voltpark keys add" in result.err
    assert not Lease.objects.exists()


def test_a_reserved_booking_needs_an_end(alice_cli) -> None:
    result = alice_cli("book", "--gpus", "1", "--start", "+1h")
    assert (result.code, result.err) == (USAGE, "A reserved lease needs an end: give --end or --hours.\n")
    assert alice_cli("book", "--gpus", "1", "--start", "tomorrow").code == USAGE


def test_without_a_token_it_says_how_to_get_one(cli, db) -> None:
    result = cli("leases")
    assert result.code == NOT_AUTHENTICATED
    assert "No API token: set VOLTPARK_TOKEN or run `voltpark login`" in result.err


def test_a_revoked_or_wrong_token_is_the_apis_sentence(cli, db) -> None:
    result = cli.as_("vp_not-a-token")("leases")
    assert (result.code, result.err) == (
        NOT_AUTHENTICATED,
        "The API token is not valid or has been revoked.\n",
    )


def test_leases_lease_extend_and_release_by_the_first_characters_of_the_id(alice_cli) -> None:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    booked = alice_cli(
        "book", "--gpus", "2", "--region", "us-wa-1", "--start", start.isoformat(), "--hours", "2"
    )
    lease = Lease.objects.get()
    short = str(lease.public_id)[:8]
    assert booked.code == OK

    listed = alice_cli("leases")
    assert listed.out.splitlines()[0].split()[:5] == ["LEASE", "STATE", "GPUS", "REGION", "KIND"]
    assert listed.out.splitlines()[1].split()[:5] == [short, "scheduled", "2", "us-wa-1", "reserved"]

    shown = alice_cli("lease", short)
    assert f"Lease: {lease.public_id}\nState: scheduled\nGPUs:  2 in Washington 1 (us-wa-1)\n" in shown.out

    new_end = start + timedelta(hours=5)
    extended = alice_cli("extend", short, "--until", new_end.isoformat(), "--json")
    assert extended.code == OK and datetime.fromisoformat(extended.json()["end"]) == new_end
    lease.refresh_from_db()
    assert lease.end == new_end

    released = alice_cli("release", short)
    assert released.out == f"Lease {short} was cancelled before its start; nothing is billed.\n"
    lease.refresh_from_db()
    assert lease.state == LeaseState.CANCELLED


def test_an_unknown_lease_id_is_not_found(alice_cli) -> None:
    assert alice_cli("lease", "0000").code == NOT_FOUND
    assert alice_cli("release", "7c4e4d52-9d1f-4c55-8a43-0d0f3a1c9e11").code == NOT_FOUND


def test_keys_add_list_and_remove(cli, bob, token_of, tmp_path) -> None:
    key_file = tmp_path / "id_ed25519.pub"
    key_file.write_text(ALICE_KEY + "\n")
    bob_cli = cli.as_(token_of(bob))
    added = bob_cli("keys", "add", str(key_file), "--name", "work laptop")
    assert added.code == OK, added.err
    assert (
        added.out == f"Added key work laptop ({ALICE_FINGERPRINT}); leases booked from now on install it.\n"
    )
    assert SshKey.objects.get(user=bob).fingerprint == ALICE_FINGERPRINT
    assert "work laptop" in bob_cli("keys").out
    assert bob_cli("keys", "add", str(key_file)).code == USAGE  # the same key twice
    assert bob_cli("keys", "add", str(tmp_path / "missing.pub")).code == USAGE
    assert bob_cli("keys", "remove", "work laptop").code == OK
    assert not SshKey.objects.filter(user=bob).exists()


def test_invoices_for_the_owner_and_not_for_a_member(cli, alice, bob, acme, token_of) -> None:
    march = datetime(2026, 3, 1, tzinfo=UTC)
    make_lease(organization=acme, start=march, end=march + timedelta(hours=10), gpus=8, price="1.9900")
    month_close(period_start=march, now=datetime(2026, 4, 1, 1, tzinfo=UTC))
    result = cli.as_(token_of(alice))("invoices")
    assert result.code == OK
    assert result.out.splitlines()[1].split()[:6] == [
        "VP-2026-000001",
        "2026-03-01",
        "to",
        "2026-03-31",
        "open",
        "159.20",
    ]
    member = cli.as_(token_of(bob))("invoices")
    assert (
        member.code == NOT_ALLOWED and member.err == "Your role in this organization does not allow this.\n"
    )


def test_wait_gives_up_after_its_timeout_saying_the_lease_may_still_start(alice_cli) -> None:
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    result = alice_cli(
        "book",
        "--gpus",
        "1",
        "--start",
        start.isoformat(),
        "--hours",
        "1",
        "--wait",
        "--timeout",
        "1",
        "--interval",
        "0.3",
    )
    assert result.code == TIMED_OUT
    assert "The lease is still scheduled after 1 s; it may still start" in result.err
    assert "Waiting for lease" in result.err  # the progress line (stderr is no terminal here)


def test_wait_stops_when_the_lease_fails_instead_of_starting(alice_cli, alice, monkeypatch) -> None:
    def fail_it(lease: dict) -> None:
        Lease.objects.filter(public_id=lease["id"]).update(state=LeaseState.FAILED, state_reason="node down")

    original = Client.wait_until_active

    def wait(self, lease_id, **options):
        fail_it({"id": lease_id})
        return original(self, lease_id, **options)

    monkeypatch.setattr(Client, "wait_until_active", wait)
    result = alice_cli("book", "--gpus", "1", "--region", "us-tx-1", "--wait", "--interval", "0.1")
    assert result.code == LEASE_ENDED
    assert result.err.endswith("The lease is failed instead of active (node down).\n")


def test_login_keeps_a_checked_token_readable_by_its_owner_only(
    cli, alice, token_of, monkeypatch, tmp_path
) -> None:
    secret = token_of(alice)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("vp_wrong\n"))
    assert cli("login", "--token-stdin").code == NOT_AUTHENTICATED
    path = tmp_path / "voltpark" / "config.toml"
    assert not path.exists()

    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(secret + "\n"))
    result = cli("login", "--token-stdin")
    assert result.code == OK and str(path) in result.out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cli("leases").code == OK  # no VOLTPARK_TOKEN: the file's token
    assert cli("logout").code == OK and not path.exists()


def test_an_unreachable_server_exits_unreachable(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VOLTPARK_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("VOLTPARK_TOKEN", "vp_x")
    monkeypatch.setattr("voltpark_client.client.RETRY_PAUSE_S", 0)
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    assert main(["--url", "http://127.0.0.1:9", "leases"]) == UNREACHABLE


def test_the_python_client_returns_the_apis_json_and_raises_its_refusals(
    wsgi_transport, alice, token_of, seeded_fleet
) -> None:
    with Client("http://testserver", token_of(alice), transport=wsgi_transport) as vp:
        lease = vp.book(gpus=1, region="us-tx-1")
        assert vp.lease(lease["id"])["state"] == "scheduled"
        assert [found["id"] for found in vp.leases()] == [lease["id"]]
        with pytest.raises(ApiError) as refused:
            vp.lease("7c4e4d52-9d1f-4c55-8a43-0d0f3a1c9e11")
        assert refused.value.status == 404
        assert vp.release(lease["id"])["state"] == "cancelled"  # it had not started


def test_times_are_read_as_people_type_them() -> None:
    now = datetime(2026, 5, 1, 9, 17, 42, tzinfo=UTC)
    assert parse_time("now", now=now) == datetime(2026, 5, 1, 9, 17, tzinfo=UTC)
    assert parse_time("+1d12h", now=now) == datetime(2026, 5, 2, 21, 17, tzinfo=UTC)
    assert parse_time("2026-05-01T10:00Z") == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert parse_time("2026-05-01 10:00").tzinfo is not None
    with pytest.raises(ValueError, match="is not a time"):
        parse_time("tomorrow")


def test_offerings_lists_the_earliest_windows_and_how_to_book_the_first(alice_cli) -> None:
    result = alice_cli("offerings", "--gpus", "8", "--hours", "3")
    assert result.code == OK, result.err
    header, *rows, hint = result.out.splitlines()
    assert header.split()[:2] == ["REGION", "NAME"]
    assert sorted(row.split()[0] for row in rows) == ["us-tx-1", "us-va-1", "us-wa-1"]
    assert hint.startswith("Book the first: voltpark book --gpus 8 --region us-")
    # What the hint says books exactly that window.
    booked = alice_cli(*hint.removeprefix("Book the first: voltpark ").split())
    assert booked.code == OK, booked.err
    assert Lease.objects.get().kind == LeaseKind.RESERVED
    as_json = alice_cli("offerings", "--gpus", "8", "--hours", "3", "--region", "us-va-1", "--json")
    assert [o["region"] for o in as_json.json()["offerings"]] == ["us-va-1"]


def test_offerings_refuses_a_size_that_cannot_be_booked_with_the_apis_sentence(alice_cli) -> None:
    result = alice_cli("offerings", "--gpus", "5", "--hours", "3")
    assert result.code == USAGE and "Ask for 1, 2, 4 or 8 GPUs" in result.err


def test_balance_for_the_owner_and_not_for_a_member(cli, alice, bob, acme, token_of) -> None:
    result = cli.as_(token_of(alice))("balance")
    assert result.code == OK, result.err
    facts = dict(line.split(":", 1) for line in result.out.splitlines())
    assert facts["Balance"].strip() == "0.00 USD" and "Available" in facts and "Runway" in facts
    assert cli.as_(token_of(alice))("balance", "--json").json()["currency"] == "USD"
    assert cli.as_(token_of(bob))("balance").code == NOT_ALLOWED
