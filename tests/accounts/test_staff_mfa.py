"""Two-factor authentication: required of staff before any staff page, staff API or the admin
answers them; a sign-in asks for the code; every change of a second factor is audited."""

import pyotp
import pytest
from allauth.mfa.models import Authenticator

from accounts.models import AuditEntry
from tests.accounts.helpers import PASSWORD, log_in, set_up_authenticator_app
from tests.factories import STAFF_TOTP_SECRET

STAFF_ADMIN_PAGES = ["/staff/fleet/", "/staff/leases/", "/staff/early-stage/"]
STAFF_APIS = ["/api/v1/nodes/", "/api/v1/early-stage/queue/", "/api/v1/revenue/", "/api/v1/invoices/"]


@pytest.mark.parametrize("url", [*STAFF_ADMIN_PAGES, "/admin/"])
def test_a_staff_admin_without_mfa_is_sent_to_set_it_up(client, sam, url) -> None:
    client.force_login(sam)
    response = client.get(url, follow=True)
    assert response.redirect_chain[-1][0] == "/2fa/"
    assert "staff pages need two-factor authentication" in response.content.decode()


def test_staff_finance_without_mfa_is_sent_to_set_it_up(client, fay) -> None:
    client.force_login(fay)
    response = client.get("/staff/finance/")
    assert response.status_code == 302 and response["Location"] == "/2fa/"


@pytest.mark.parametrize("url", STAFF_APIS)
def test_no_staff_api_answers_staff_without_mfa(client, sam, fay, url) -> None:
    for who in (sam, fay):
        client.force_login(who)
        response = client.get(url)
        assert response.status_code == 403, (who, url)
        assert response.json()["code"] == "mfa_required"
        assert "two-factor authentication" in response.json()["detail"]


def test_a_staff_token_stops_answering_when_its_user_removes_the_second_factor(api_as, stella) -> None:
    api = api_as(stella)
    assert api.get("/api/v1/nodes/").status_code == 200
    Authenticator.objects.filter(user=stella).delete()
    response = api.get("/api/v1/nodes/")
    assert response.status_code == 403 and response.json()["code"] == "mfa_required"


@pytest.mark.parametrize("url", [*STAFF_ADMIN_PAGES, "/admin/", "/metrics"])
def test_with_a_second_factor_the_staff_pages_answer(client, stella, url) -> None:
    client.force_login(stella)
    assert client.get(url).status_code == 200


def test_with_a_second_factor_the_staff_api_answers(api_as, stella, frank) -> None:
    assert api_as(stella).get("/api/v1/nodes/").status_code == 200
    assert api_as(frank).get("/api/v1/revenue/").status_code == 200


def test_the_admin_signs_in_through_the_sites_log_in(client, db) -> None:
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/admin/"


def test_staff_without_mfa_land_on_the_set_up_page_after_logging_in(client, sam) -> None:
    response = log_in(client, sam)
    assert response.status_code == 302 and response["Location"] == "/2fa/"


def test_log_in_asks_for_the_code_and_a_wrong_one_is_refused_and_audited(client, stella) -> None:
    first = log_in(client, stella)
    assert first.status_code == 302 and first["Location"] == "/2fa/authenticate/"
    assert "_auth_user_id" not in client.session
    wrong = client.post("/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.get(action="user.mfa_failed").after["type"] == "totp"

    right = client.post("/2fa/authenticate/", {"code": pyotp.TOTP(STAFF_TOTP_SECRET).now()})
    assert right.status_code == 302
    assert client.session["_auth_user_id"] == str(stella.pk)
    assert AuditEntry.objects.get(action="user.login").after["method"] == "password,mfa"


def test_setting_up_an_authenticator_app_is_audited_and_opens_the_staff_pages(
    client, sam, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # allauth announces the change on commit
        page = set_up_authenticator_app(client, sam)
    assert "<svg" in page and "data:image" not in page  # the QR code inline, allowed by the policy
    assert Authenticator.objects.filter(user=sam, type=Authenticator.Type.TOTP).exists()
    added = set(AuditEntry.objects.filter(action="mfa.add", actor=sam).values_list("after__type", flat=True))
    assert added == {"totp", "recovery_codes"}  # recovery codes come with the app
    assert client.get("/staff/fleet/").status_code == 200


def test_removing_the_authenticator_app_is_audited_and_closes_the_staff_pages(client, sam) -> None:
    set_up_authenticator_app(client, sam)
    client.post("/reauthenticate/", {"password": PASSWORD})
    client.post("/2fa/totp/deactivate/")
    assert not Authenticator.objects.filter(user=sam, type=Authenticator.Type.TOTP).exists()
    assert AuditEntry.objects.filter(action="mfa.remove", actor=sam, after__type="totp").exists()
    assert client.get("/staff/fleet/")["Location"] == "/2fa/"
