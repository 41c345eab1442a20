"""The early-stage program page: an owner applies once; the organization sees the decision and note."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from programs.choices import ApplicationStatus
from programs.models import EarlyStageApplication
from programs.services.early_stage import early_stage_apply, early_stage_approve, early_stage_reject
from tests.helpers import PEOPLE, status_of

EXPECTED = {"alice": 200, "bob": 200, "fiona": 403, "charlie": 200, "stella": 403, "frank": 403}
APPLICATION = {
    "what_we_build": "Protein folding for small labs",
    "stage": "seed",
    "funding": "$2M seed",
    "gpus_wanted": "32",
    "why": "Training runs of a week on 32 GPUs.",
}


def apply(acme, alice) -> EarlyStageApplication:
    data: dict[str, Any] = {**APPLICATION, "gpus_wanted": 32}
    return early_stage_apply(actor=alice, organization=acme, **data)


@pytest.mark.parametrize("who", PEOPLE)
def test_the_page_answers_each_role(client_as, who) -> None:
    assert status_of(client_as(who).get("/organization/early-stage/")) == EXPECTED.get(who, "login")


def test_the_organization_page_links_to_it(client_as) -> None:
    assert 'href="/organization/early-stage/"' in client_as("bob").get("/organization/").content.decode()


def test_an_owner_applies_and_sees_it_pending(client_as, acme) -> None:
    client = client_as("alice")
    response = client.post("/organization/early-stage/", APPLICATION)
    assert response.status_code == 302
    application = EarlyStageApplication.objects.get(organization=acme)
    assert (application.status, application.gpus_wanted, application.stage) == ("pending", 32, "seed")
    html = client.get("/organization/early-stage/").content.decode()
    assert "Pending review" in html and "Send the application" not in html


def test_a_missing_answer_is_named(client_as, acme) -> None:
    response = client_as("alice").post("/organization/early-stage/", {**APPLICATION, "why": ""})
    assert response.status_code == 200 and "why" in response.context["form"].errors
    assert not EarlyStageApplication.objects.exists()


def test_a_member_sees_the_status_but_may_not_apply(client_as, acme, alice) -> None:
    client = client_as("bob")
    assert "Send the application" not in client.get("/organization/early-stage/").content.decode()
    assert client.post("/organization/early-stage/", APPLICATION).status_code == 403
    assert not EarlyStageApplication.objects.exists()


def test_a_second_application_while_one_waits_is_refused(client_as, acme, alice) -> None:
    apply(acme, alice)
    assert client_as("alice").post("/organization/early-stage/", APPLICATION).status_code == 403
    assert EarlyStageApplication.objects.filter(organization=acme).count() == 1


def test_a_rejection_shows_its_note_and_the_owner_may_apply_again(client_as, acme, alice, stella) -> None:
    early_stage_reject(
        actor=stella, application=apply(acme, alice), note="Please apply once you have raised."
    )
    html = client_as("alice").get("/organization/early-stage/").content.decode()
    assert "Rejected" in html and "Please apply once you have raised." in html
    assert "Send the application" in html


def test_an_approval_shows_the_quota_granted(client_as, acme, alice, stella) -> None:
    early_stage_approve(
        actor=stella,
        application=apply(acme, alice),
        gpu_quota=64,
        credit_amount=Decimal("5000"),
        credit_expires_at=timezone.now() + timedelta(days=365),
        note="Welcome aboard.",
    )
    html = client_as("bob").get("/organization/early-stage/").content.decode()
    assert ApplicationStatus.APPROVED.label in html and "quota 64 GPUs" in html and "Welcome aboard." in html


def test_the_form_is_protected_against_cross_site_posts(acme, alice) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/organization/early-stage/", APPLICATION).status_code == 403
    assert not EarlyStageApplication.objects.exists()


def test_an_answer_over_the_maximum_is_named_on_the_page(client_as, acme) -> None:
    response = client_as("alice").post("/organization/early-stage/", {**APPLICATION, "why": "x" * 2001})
    assert response.status_code == 200
    assert "at most 2000 characters" in response.context["form"].errors["why"][0]
    assert not EarlyStageApplication.objects.exists()
