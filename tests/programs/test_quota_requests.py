"""Asking for more quota: an owner asks from the booking page's refusal (how many, until when, why);
staff admins approve (with an optional expiry) or reject in the early-stage queue, with its history;
both sides are emailed, every step is audited, the API does the same, and an expired quota goes back."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import AuditEntry, Organization
from programs.choices import ApplicationStatus
from programs.models import QuotaRequest
from programs.services.quota_requests import (
    quota_request_approve,
    quota_request_create,
    quota_requests_expire,
)
from tests.helpers import api_client_for

QUEUE = "/staff/early-stage/"
QUOTA = "/organization/quota/"


def ask(client, **fields):
    return client.post(QUOTA, {"gpus": "64", "needed_until": "", "why": "A 64-GPU training run.", **fields})


def test_the_booking_panel_over_quota_says_no_and_links_to_ask_for_exactly_what_is_needed(
    client_as, seeded_fleet
) -> None:
    html = (
        client_as("alice")
        .get("/book/check/", {"region": "us-tx-1", "gpus": "16", "kind": "on_demand", "tz": "UTC"})
        .content.decode()
    )
    fits = re.search(r'<dd data-field="fits">(.*?)</dd>', html, re.S).group(1)
    assert "tag bad" in fits and "tag good" not in fits  # not a green Yes beside a red Over quota
    assert 'href="/organization/quota/?gpus=16" data-ask-quota>Ask for more quota</a>' in html
    page = client_as("alice").get("/organization/quota/?gpus=16").content.decode()
    assert 'name="gpus" value="16"' in page


def test_an_owner_asks_staff_are_emailed_and_the_request_is_audited(
    client_as, acme, alice, stella, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = ask(
            client_as("alice"), needed_until=(timezone.now() + timedelta(days=30)).date().isoformat()
        )
    assert response.status_code == 302
    request = QuotaRequest.objects.get(organization=acme)
    assert (request.gpus, request.quota_before, request.status) == (64, 8, ApplicationStatus.PENDING)
    assert AuditEntry.objects.filter(action="quota_request.create", actor=alice, organization=acme).exists()
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@acme.example", "stella@voltpark.example"]
    to_staff = next(m for m in mail.outbox if m.to == ["stella@voltpark.example"])
    assert (
        "asks for a quota of 64 GPUs for Acme AI (now 8)" in to_staff.body
        and "/staff/early-stage/" in to_staff.body
    )
    page = client_as("alice").get(QUOTA).content.decode()
    assert "A request is waiting for staff" in page and "Pending review" in page


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"gpus": "8"}, "gpus", "Your quota is already 8 GPUs; ask for more than that."),
        ({"gpus": "lots"}, "gpus", "Enter a whole number."),
        ({"why": ""}, "why", "This field is required."),
        ({"needed_until": "2020-01-01"}, "needed_until", "Choose a day after today."),
    ],
)
def test_a_bad_request_names_its_field_and_changes_nothing(
    client_as, acme, alice, fields, field, message
) -> None:
    response = ask(client_as("alice"), **fields)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_{field}"' in html and message in html
    assert not QuotaRequest.objects.exists() and mail.outbox == []


def test_only_owners_ask_and_one_request_waits_at_a_time(client_as, acme, alice, bob) -> None:
    assert ask(client_as("bob")).status_code == 403
    assert "An owner of Acme AI can ask" in client_as("bob").get(QUOTA).content.decode()
    assert ask(client_as("alice")).status_code == 302
    assert ask(client_as("alice")).status_code == 403  # the form is gone while one waits
    assert QuotaRequest.objects.count() == 1


def test_staff_approve_in_the_queue_with_an_expiry_and_the_owner_is_emailed(
    client_as, acme, alice, stella, django_capture_on_commit_callbacks
) -> None:
    ask(client_as("alice"), gpus="32", why="Two weeks of fine-tuning.")
    request = QuotaRequest.objects.get()
    mail.outbox.clear()
    staff = client_as("stella")
    queue = staff.get(QUEUE).content.decode()
    card = re.search(
        r'<article class="card application" data-quota-request="acme-ai".*?</article>', queue, re.S
    ).group(0)
    assert "Two weeks of fine-tuning." in card and "asked for 32 GPUs" in card  # the history
    expires = (timezone.now() + timedelta(days=14)).date()
    prefix = f"quota-approve-{request.public_id}"
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            f"/staff/quota-requests/{request.public_id}/approve/",
            {
                f"{prefix}-gpu_quota": "32",
                f"{prefix}-expires_on": expires.isoformat(),
                f"{prefix}-note": "Go.",
            },
        )
    assert response.status_code == 302
    acme.refresh_from_db()
    request.refresh_from_db()
    assert acme.gpu_quota == 32 and request.status == ApplicationStatus.APPROVED
    assert request.expires_at == datetime(expires.year, expires.month, expires.day, tzinfo=UTC)
    assert AuditEntry.objects.filter(action="quota_request.approve", actor=stella).count() == 1
    [email] = mail.outbox
    assert email.to == ["alice@acme.example"] and "up to 32 GPUs at once until" in email.body
    decided = re.search(
        r'<table id="quota-decided">.*?</table>', staff.get(QUEUE).content.decode(), re.S
    ).group(0)
    assert "Acme AI" in decided and "Approved" in decided and expires.isoformat() in decided
    answer = client_as("alice").get(QUOTA).content.decode()
    assert f"Quota 32 GPUs until {expires.isoformat()}: Go." in answer


def test_staff_reject_with_a_note_and_a_bad_decision_names_its_field(
    client_as, acme, alice, stella, django_capture_on_commit_callbacks
) -> None:
    ask(client_as("alice"))
    request = QuotaRequest.objects.get()
    staff = client_as("stella")
    response = staff.post(f"/staff/quota-requests/{request.public_id}/reject/", {})
    assert response.status_code == 400 and 'id="id_quota-reject-' in response.content.decode()
    prefix = f"quota-approve-{request.public_id}"
    response = staff.post(f"/staff/quota-requests/{request.public_id}/approve/", {f"{prefix}-gpu_quota": "4"})
    assert response.status_code == 400 and "The quota is already 8" in response.content.decode()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(
            f"/staff/quota-requests/{request.public_id}/reject/",
            {f"quota-reject-{request.public_id}-note": "Not now."},
        )
    request.refresh_from_db()
    acme.refresh_from_db()
    assert request.status == ApplicationStatus.REJECTED and acme.gpu_quota == 8
    assert [m.to for m in mail.outbox] == [["alice@acme.example"]] and "Not now." in mail.outbox[0].body


@pytest.mark.parametrize("who", ["alice", "bob", "charlie", "frank"])
def test_only_staff_admins_decide(client_as, acme, alice, who) -> None:
    request = quota_request_create(actor=alice, organization=acme, gpus=64, why="x")
    prefix = f"quota-approve-{request.public_id}"
    response = client_as(who).post(
        f"/staff/quota-requests/{request.public_id}/approve/", {f"{prefix}-gpu_quota": "64"}
    )
    assert response.status_code == 403
    assert Organization.objects.get(pk=acme.pk).gpu_quota == 8


def test_the_api_asks_lists_and_decides(acme, alice, bob, stella) -> None:
    owner = api_client_for(alice, acme)
    created = owner.post("/api/v1/quota-requests/", {"gpus": 48, "why": "Inference launch."}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "pending"
    refused = api_client_for(bob, acme).post(
        "/api/v1/quota-requests/", {"gpus": 48, "why": "x"}, format="json"
    )
    assert refused.status_code == 403
    bad = owner.post("/api/v1/quota-requests/", {"gpus": 0, "why": "x"}, format="json")
    assert bad.status_code == 400 and list(bad.json()["fields"]) == ["gpus"], bad.json()
    assert [r["gpus"] for r in api_client_for(bob, acme).get("/api/v1/quota-requests/").json()] == [48]
    staff = api_client_for(stella)
    queue = staff.get("/api/v1/quota-requests/queue/").json()
    assert [r["organization"] for r in queue] == ["acme-ai"]
    approved = staff.post(
        f"/api/v1/quota-requests/{queue[0]['id']}/approve/", {"gpu_quota": 48}, format="json"
    )
    assert approved.status_code == 200 and approved.json()["granted_gpu_quota"] == 48
    assert owner.get("/api/v1/quota-requests/queue/").status_code == 403


def test_an_expired_quota_goes_back_once_unless_staff_changed_it_since(
    acme, globex, alice, charlie, stella
) -> None:
    soon = timezone.now() + timedelta(hours=1)
    for org, owner in ((acme, alice), (globex, charlie)):
        request = quota_request_create(actor=owner, organization=org, gpus=40, why="x")
        quota_request_approve(actor=stella, request=request, gpu_quota=40, expires_at=soon)
    Organization.objects.filter(pk=globex.pk).update(gpu_quota=100)  # staff changed it since
    assert quota_requests_expire(now=soon - timedelta(seconds=1)) == 0
    assert quota_requests_expire(now=soon) == 2
    assert quota_requests_expire(now=soon) == 0  # once
    acme.refresh_from_db()
    globex.refresh_from_db()
    assert (acme.gpu_quota, globex.gpu_quota) == (8, 100)
    assert AuditEntry.objects.filter(action="quota_request.expire").count() == 2
