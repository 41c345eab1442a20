"""The early-stage program: an owner applies, a staff admin approves or rejects, everyone is told."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import AuditEntry
from billing.models import CreditGrant
from programs.choices import ApplicationStatus
from programs.models import EarlyStageApplication
from programs.services.early_stage import early_stage_apply, early_stage_approve, early_stage_reject

EXPIRES = datetime(2027, 6, 30, tzinfo=UTC)
FORM: dict[str, Any] = {
    "what_we_build": "Protein folding models",
    "stage": "seed",
    "funding": "$2M seed",
    "gpus_wanted": 32,
    "why": "Training runs",
}


@pytest.fixture
def application(alice, acme) -> EarlyStageApplication:
    return early_stage_apply(actor=alice, organization=acme, **FORM)


def test_an_owner_applies_and_the_application_waits_for_review(application, alice) -> None:
    assert application.status == ApplicationStatus.PENDING and application.submitted_by == alice
    assert AuditEntry.objects.filter(
        action="early_stage.apply", object_id=str(application.public_id)
    ).exists()


def test_a_member_cannot_apply_for_the_organization(bob, acme) -> None:
    with pytest.raises(PermissionDenied):
        early_stage_apply(actor=bob, organization=acme, **FORM)
    assert not EarlyStageApplication.objects.exists()


def test_only_one_application_may_be_pending(application, alice, acme) -> None:
    with pytest.raises(ValidationError, match="already has an application"):
        early_stage_apply(actor=alice, organization=acme, **FORM)
    assert EarlyStageApplication.objects.count() == 1


def test_approval_grants_quota_pool_and_credit_emails_and_audits(
    application, stella, acme, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        early_stage_approve(
            actor=stella,
            application=application,
            gpu_quota=64,
            credit_amount=Decimal("5000"),
            credit_expires_at=EXPIRES,
            note="Welcome!",
        )
    acme.refresh_from_db()
    application.refresh_from_db()
    assert (acme.gpu_quota, acme.early_stage_approved) == (64, True)
    assert (application.status, application.decided_by, application.granted_gpu_quota) == (
        ApplicationStatus.APPROVED,
        stella,
        64,
    )
    grant = CreditGrant.objects.get(organization=acme)
    assert (grant.amount, grant.remaining, grant.expires_at, grant.granted_by) == (
        Decimal("5000.00"),
        Decimal("5000.00"),
        EXPIRES,
        stella,
    )
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@acme.example"]
    assert "approved" in mail.outbox[0].subject and "5000.00 USD" in mail.outbox[0].body
    entry = AuditEntry.objects.get(action="early_stage.approve")
    assert entry.actor == stella and entry.before["gpu_quota"] == 8 and entry.after["gpu_quota"] == 64


def test_rejection_stores_the_note_emails_and_audits(
    application, stella, acme, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        early_stage_reject(actor=stella, application=application, note="Please apply after your seed round.")
    application.refresh_from_db()
    acme.refresh_from_db()
    assert application.status == ApplicationStatus.REJECTED
    assert application.decision_note == "Please apply after your seed round."
    assert acme.early_stage_approved is False and not CreditGrant.objects.exists()
    assert "not approved" in mail.outbox[0].subject and "after your seed round" in mail.outbox[0].body
    assert AuditEntry.objects.get(action="early_stage.reject").after == {
        "note": "Please apply after your seed round."
    }


def test_only_staff_admins_decide(application, alice, frank) -> None:
    for actor in (alice, frank):
        with pytest.raises(PermissionDenied):
            early_stage_reject(actor=actor, application=application, note="no")
    application.refresh_from_db()
    assert application.status == ApplicationStatus.PENDING


def test_a_decided_application_cannot_be_decided_again(application, stella) -> None:
    early_stage_reject(actor=stella, application=application, note="no")
    with pytest.raises(ValidationError, match="already rejected"):
        early_stage_approve(
            actor=stella,
            application=application,
            gpu_quota=16,
            credit_amount=Decimal("1"),
            credit_expires_at=EXPIRES,
        )
    assert not CreditGrant.objects.exists()


def test_the_api_lets_an_owner_apply_and_see_only_its_own(api_as, alice, charlie) -> None:
    created = api_as(alice).post("/api/v1/early-stage/applications/", FORM, format="json")
    assert created.status_code == 201 and created.json()["status"] == "pending"
    assert len(api_as(alice).get("/api/v1/early-stage/applications/").json()) == 1
    assert api_as(charlie).get("/api/v1/early-stage/applications/").json() == []


def test_the_api_refuses_a_member_applying(api_as, bob) -> None:
    response = api_as(bob).post("/api/v1/early-stage/applications/", FORM, format="json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert response.json()["detail"] == "Only an owner of the organization may apply."
    assert not EarlyStageApplication.objects.exists()


def test_staff_see_the_queue_and_approve_through_the_api(api_as, application, stella, alice, acme) -> None:
    assert api_as(alice).get("/api/v1/early-stage/queue/").status_code == 403
    queue = api_as(stella).get("/api/v1/early-stage/queue/").json()
    assert [row["id"] for row in queue] == [str(application.public_id)]
    url = f"/api/v1/early-stage/applications/{application.public_id}/approve/"
    body = {"gpu_quota": 48, "credit_amount": "2500.00", "credit_expires_at": (EXPIRES).isoformat()}
    assert api_as(alice).post(url, body, format="json").status_code == 403
    response = api_as(stella).post(url, body, format="json")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    acme.refresh_from_db()
    assert acme.gpu_quota == 48 and CreditGrant.objects.get().amount == Decimal("2500.00")


def test_staff_reject_through_the_api_and_a_second_decision_is_refused(api_as, application, stella) -> None:
    url = f"/api/v1/early-stage/applications/{application.public_id}/reject/"
    assert api_as(stella).post(url, {"note": "Not yet"}, format="json").status_code == 200
    again = api_as(stella).post(url, {"note": "Again"}, format="json")
    assert again.status_code == 400 and again.json()["code"] == "invalid"
    assert "already rejected" in again.json()["detail"]
    application.refresh_from_db()
    assert application.decision_note == "Not yet"


def test_an_expiry_in_the_past_is_refused(application, stella) -> None:
    with pytest.raises(ValidationError):
        early_stage_approve(
            actor=stella,
            application=application,
            gpu_quota=16,
            credit_amount=Decimal("10"),
            credit_expires_at=datetime.now(UTC) - timedelta(days=1),
        )
    application.refresh_from_db()
    assert application.status == ApplicationStatus.PENDING


def test_a_finance_member_cannot_read_the_applications_through_the_api(api_as, application, fiona) -> None:
    response = api_as(fiona).get("/api/v1/early-stage/applications/")
    assert response.status_code == 403 and "does not allow" in response.json()["detail"]
    assert api_as(fiona).post("/api/v1/early-stage/applications/", FORM, format="json").status_code == 403
    assert EarlyStageApplication.objects.count() == 1


def test_a_quota_beyond_what_can_be_granted_is_a_400_naming_it(api_as, application, stella, acme) -> None:
    url = f"/api/v1/early-stage/applications/{application.public_id}/approve/"
    body = {"gpu_quota": 2147483648, "credit_amount": "1.00", "credit_expires_at": EXPIRES.isoformat()}
    response = api_as(stella).post(url, body, format="json")
    assert response.status_code == 400
    assert "less than or equal to 100000" in response.json()["fields"]["gpu_quota"][0]
    acme.refresh_from_db()
    application.refresh_from_db()
    assert acme.gpu_quota == 8 and application.status == ApplicationStatus.PENDING
    assert not CreditGrant.objects.exists()


@pytest.mark.parametrize("field", ["what_we_build", "why"])
def test_an_answer_over_2000_characters_is_refused_naming_it(api_as, alice, field) -> None:
    response = api_as(alice).post(
        "/api/v1/early-stage/applications/", {**FORM, field: "x" * 2001}, format="json"
    )
    assert response.status_code == 400
    assert "no more than 2000 characters" in response.json()["fields"][field][0]
    assert not EarlyStageApplication.objects.exists()


def test_a_decision_note_over_2000_characters_is_refused(api_as, application, stella) -> None:
    url = f"/api/v1/early-stage/applications/{application.public_id}/reject/"
    response = api_as(stella).post(url, {"note": "x" * 2001}, format="json")
    assert response.status_code == 400 and "note" in response.json()["fields"]
    application.refresh_from_db()
    assert application.status == ApplicationStatus.PENDING
