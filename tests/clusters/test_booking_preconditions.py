"""Who may book at all: a user whose email address is not verified is refused, by the API, the page
and the service alike, and nothing is booked."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from accounts.models import AuditEntry
from accounts.selectors.booking import EmailUnverified
from clusters.choices import LeaseKind
from clusters.models import Allocation, Lease, Region
from clusters.services.booking import lease_book
from tests.clusters.helpers import reserved


@pytest.fixture
def unverified_alice(alice):
    EmailAddress.objects.filter(user=alice).update(verified=False)
    return alice


def test_the_api_refuses_a_booking_until_the_email_is_verified(api_as, unverified_alice, fleet) -> None:
    response = api_as(unverified_alice).post("/api/v1/leases/", reserved(4), format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "email_unverified"
    assert body["detail"].startswith("Verify your email address alice@acme.example before booking")
    assert "http://127.0.0.1:8000/email/" in body["detail"]
    assert not Lease.objects.exists() and not Allocation.objects.exists()
    assert not AuditEntry.objects.filter(action="lease.book").exists()


def test_a_verified_address_books(api_as, alice, fleet) -> None:
    assert api_as(alice).post("/api/v1/leases/", reserved(4), format="json").status_code == 201


def test_the_service_refuses_whatever_the_caller(unverified_alice, acme, fleet) -> None:
    with pytest.raises(EmailUnverified):
        lease_book(
            user=unverified_alice,
            organization=acme,
            region=Region.objects.get(code="us-tx-1"),
            gpus=1,
            kind=LeaseKind.ON_DEMAND,
        )
    assert not Lease.objects.exists()


def test_the_booking_page_says_so_and_offers_to_send_the_email_again(client, unverified_alice, fleet) -> None:
    client.force_login(unverified_alice)
    page = client.get("/book/").content.decode()
    assert "Verify your email address alice@acme.example before booking" in page
    assert 'data-blocker="email_unverified"' in page and "Send the verification email again" in page

    key = str(unverified_alice.ssh_keys.get().public_id)  # ticked, as the page ticks it
    fields = {"region": "us-tx-1", "gpus": 1, "kind": "on_demand", "tz": "UTC", "ssh_keys": key}
    response = client.post("/book/", fields)
    assert response.status_code == 200 and not Lease.objects.exists()
    assert "Verify your email address" in response.content.decode()

    client.post("/email/", {"email": "alice@acme.example", "action_send": ""})
    assert [m.to for m in mail.outbox] == [["alice@acme.example"]]
    confirm = re.search(r"https?://[^/\s]+(/confirm-email/\S+)", str(mail.outbox[0].body)).group(1)
    client.post(confirm)
    assert "data-blocker" not in client.get("/book/").content.decode()
