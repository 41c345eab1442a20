"""Recovery codes: made with the authenticator app, each signs in once in place of the app's code,
new ones replace the old (audited), and alone they are not the second factor staff need."""

from allauth.mfa.models import Authenticator

from accounts.models import AuditEntry
from tests.accounts.helpers import log_in, recovery_codes_shown, set_up_authenticator_app


def sign_in_with_code(client, user, code: str):
    client.logout()
    assert log_in(client, user)["Location"] == "/2fa/authenticate/"
    return client.post("/2fa/authenticate/", {"code": code})


def test_a_recovery_code_signs_in_once_in_place_of_the_apps_code(client, sam) -> None:
    set_up_authenticator_app(client, sam)
    codes = recovery_codes_shown(client)
    assert len(codes) == 10 and all(len(code) == 8 for code in codes)

    signed_in = sign_in_with_code(client, sam, codes[0])
    assert signed_in.status_code == 302 and client.session["_auth_user_id"] == str(sam.pk)
    assert (
        AuditEntry.objects.filter(action="user.login", actor=sam).latest("at").after["method"]
        == "password,mfa"
    )

    used_again = sign_in_with_code(client, sam, codes[0])
    assert used_again.status_code == 200 and "Incorrect code" in used_again.content.decode()
    assert "_auth_user_id" not in client.session
    assert sign_in_with_code(client, sam, codes[1]).status_code == 302
    assert codes[0] not in recovery_codes_shown(client) and len(recovery_codes_shown(client)) == 8


def test_new_recovery_codes_replace_the_old_ones_and_are_audited(
    client, sam, django_capture_on_commit_callbacks
) -> None:
    set_up_authenticator_app(client, sam)
    old = recovery_codes_shown(client)
    with django_capture_on_commit_callbacks(execute=True):  # allauth announces new codes on commit
        client.post("/2fa/recovery-codes/generate/")
    new = recovery_codes_shown(client)
    assert set(new).isdisjoint(old) and len(new) == 10
    assert AuditEntry.objects.filter(action="mfa.reset", actor=sam, after__type="recovery_codes").exists()

    assert "Incorrect code" in sign_in_with_code(client, sam, old[0]).content.decode()
    assert sign_in_with_code(client, sam, new[0]).status_code == 302


def test_recovery_codes_alone_are_not_the_second_factor_staff_need(client, sam) -> None:
    set_up_authenticator_app(client, sam)
    Authenticator.objects.filter(user=sam, type=Authenticator.Type.TOTP).delete()
    assert Authenticator.objects.filter(user=sam, type=Authenticator.Type.RECOVERY_CODES).exists()
    assert client.get("/staff/fleet/")["Location"] == "/2fa/"
