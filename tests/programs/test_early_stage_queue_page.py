"""The early-stage queue page: staff admins see each application and approve or reject it in one step."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.choices import Role
from accounts.models import AuditEntry, Organization
from billing.models import CreditGrant
from programs.choices import ApplicationStatus
from programs.models import EarlyStageApplication
from programs.services.early_stage import early_stage_apply
from tests.factories import MembershipFactory, OrganizationFactory
from tests.helpers import csrf_client, queries_for

QUEUE = "/staff/early-stage/"


def apply_for(organization: Organization, owner, gpus: int = 16) -> EarlyStageApplication:
    return early_stage_apply(
        actor=owner,
        organization=organization,
        what_we_build="Protein folding models for rare diseases.",
        stage="seed",
        funding="$1.2M pre-seed from angels",
        gpus_wanted=gpus,
        why="We cannot sign a three-year contract.",
    )


@pytest.fixture
def application(globex, charlie) -> EarlyStageApplication:
    return apply_for(globex, charlie)


def approve_data(application: EarlyStageApplication, **changes: object) -> dict[str, object]:
    prefix = f"approve-{application.public_id}"
    data = {
        "gpu_quota": 24,
        "credit_amount": "2500.00",
        "credit_expires_on": (timezone.now() + timedelta(days=90)).date().isoformat(),
        "note": "Welcome aboard.",
        **changes,
    }
    return {f"{prefix}-{name}": value for name, value in data.items()}


def field_errors(html: str, field: str) -> list[str]:
    block = re.search(rf'<div class="field has-error">\s*<label for="id_[^"]*-{field}">.*?</div>', html, re.S)
    return re.findall(r'<p class="error" role="alert">([^<]+)</p>', block.group(0)) if block else []


@pytest.mark.parametrize(
    ("who", "status"),
    [("alice", 403), ("bob", 403), ("fiona", 403), ("charlie", 403), ("stella", 200), ("frank", 403)],
)
def test_the_queue_answers_staff_admins_only(client, everyone, application, who, status) -> None:
    client.force_login(everyone[who])
    assert client.get(QUEUE).status_code == status


def test_an_anonymous_visitor_is_sent_to_log_in(client, application) -> None:
    response = client.get(QUEUE)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_queue_shows_what_was_asked_and_the_history(client, stella, application) -> None:
    client.force_login(stella)
    html = client.get(QUEUE).content.decode()
    assert 'data-application="globex"' in html
    for text in [
        "Seed",
        "$1.2M pre-seed from angels",
        "Protein folding",
        "cannot sign a three-year contract",
    ]:
        assert text in html
    assert re.search(r"applied\s+by charlie@globex.example \(16 GPUs wanted\)", html)
    assert 'value="16"' in html  # the quota proposed is what they asked for


def test_a_staff_admin_approves_in_one_step(client, stella, application, globex) -> None:
    client.force_login(stella)
    response = client.post(f"{QUEUE}{application.public_id}/approve/", approve_data(application))
    assert response.status_code == 302 and response["Location"] == QUEUE
    globex.refresh_from_db()
    application.refresh_from_db()
    assert (globex.gpu_quota, globex.early_stage_approved) == (24, True)
    assert (application.status, application.decided_by, application.decision_note) == (
        ApplicationStatus.APPROVED,
        stella,
        "Welcome aboard.",
    )
    grant = CreditGrant.objects.get(organization=globex)
    assert grant.amount == Decimal(
        "2500.00"
    ) and grant.expires_at.date() == application.decided_at.date() + timedelta(days=90)
    assert AuditEntry.objects.filter(action="early_stage.approve", actor=stella).count() == 1
    page = client.get(QUEUE).content.decode()
    assert "Globex Research is approved" in page and "No applications are waiting" in page
    decided = re.search(r'<table id="decided">.*?</table>', page, re.S).group(0)
    credit = re.search(r'<td data-field="credit">(.*?)</td>', decided).group(1)
    assert credit == f"$2500.00 until {grant.expires_at:%Y-%m-%d}"


def test_errors_are_shown_next_to_their_fields_and_nothing_changes(
    client, stella, application, globex
) -> None:
    client.force_login(stella)
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    data = approve_data(application, credit_amount="0", credit_expires_on=yesterday, gpu_quota="")
    response = client.post(f"{QUEUE}{application.public_id}/approve/", data)
    html = response.content.decode()
    assert response.status_code == 400
    assert field_errors(html, "credit_amount") == ["Ensure this value is greater than or equal to 0.01."]
    assert field_errors(html, "credit_expires_on") == ["Choose a day after today."]
    assert field_errors(html, "gpu_quota") == ["This field is required."]
    globex.refresh_from_db()
    application.refresh_from_db()
    assert (globex.early_stage_approved, application.status) == (False, ApplicationStatus.PENDING)
    assert not CreditGrant.objects.exists()


def test_a_staff_admin_rejects_with_a_note(client, stella, application, globex) -> None:
    client.force_login(stella)
    url = f"{QUEUE}{application.public_id}/reject/"
    empty = client.post(url, {f"reject-{application.public_id}-note": ""})
    assert empty.status_code == 400 and field_errors(empty.content.decode(), "note") == [
        "This field is required."
    ]
    response = client.post(url, {f"reject-{application.public_id}-note": "Come back after your seed round."})
    assert response.status_code == 302
    application.refresh_from_db()
    globex.refresh_from_db()
    assert (application.status, application.decision_note) == (
        ApplicationStatus.REJECTED,
        "Come back after your seed round.",
    )
    assert globex.early_stage_approved is False
    assert "Come back after your seed round." in client.get(QUEUE).content.decode()


def test_deciding_twice_says_it_was_already_decided(client, stella, application) -> None:
    client.force_login(stella)
    client.post(f"{QUEUE}{application.public_id}/reject/", {f"reject-{application.public_id}-note": "No."})
    response = client.post(f"{QUEUE}{application.public_id}/approve/", approve_data(application), follow=True)
    assert "This application was already rejected." in response.content.decode()
    application.refresh_from_db()
    assert application.status == ApplicationStatus.REJECTED and not CreditGrant.objects.exists()


@pytest.mark.parametrize("who", ["alice", "charlie", "frank"])
def test_only_staff_admins_may_decide(client, everyone, application, who) -> None:
    client.force_login(everyone[who])
    response = client.post(f"{QUEUE}{application.public_id}/approve/", approve_data(application))
    assert response.status_code == 403
    application.refresh_from_db()
    assert application.status == ApplicationStatus.PENDING


def test_an_unknown_application_is_a_404(client, stella) -> None:
    client.force_login(stella)
    assert client.post(f"{QUEUE}not-an-id/approve/", {}).status_code == 404


def test_decisions_need_the_csrf_token(stella, application) -> None:
    browser = csrf_client(stella)
    refused = browser.post(f"{QUEUE}{application.public_id}/approve/", approve_data(application))
    assert refused.status_code == 403
    application.refresh_from_db()
    assert application.status == ApplicationStatus.PENDING
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get(QUEUE).content.decode())
    assert token is not None
    data = {**approve_data(application), "csrfmiddlewaretoken": token.group(1)}
    assert browser.post(f"{QUEUE}{application.public_id}/approve/", data).status_code == 302


def test_the_queue_costs_the_same_queries_for_2_or_20_applications(client, stella) -> None:
    def applications(count: int) -> None:
        for _ in range(count):
            membership = MembershipFactory.create(organization=OrganizationFactory.create(), role=Role.OWNER)
            apply_for(membership.organization, membership.user)

    client.force_login(stella)
    applications(2)
    few = queries_for(client, QUEUE)
    applications(18)
    assert queries_for(client, QUEUE) == few


def test_a_quota_beyond_what_can_be_granted_is_named_on_the_page(client, stella, application, globex) -> None:
    client.force_login(stella)
    response = client.post(
        f"{QUEUE}{application.public_id}/approve/", approve_data(application, gpu_quota="2147483648")
    )
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "gpu_quota") == [
        "Ensure this value is less than or equal to 100000."
    ]
    globex.refresh_from_db()
    assert globex.gpu_quota == 8 and not CreditGrant.objects.exists()
