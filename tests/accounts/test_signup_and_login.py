"""Sign-up, email verification, log-in, log-out and password reset: allauth's flows on our pages."""

import re

from allauth.account.models import EmailAddress
from django.core import mail

from accounts.choices import Role
from accounts.models import AuditEntry, Membership, User

DANA = {
    "email": "Dana@Startup.example",
    "full_name": "Dana Diaz",
    "password1": "a-long-enough-pass-9",
    "organization_name": "Tensor Garden",
    "organization_kind": "startup",
}


def link_in(message: mail.EmailMessage, path_part: str) -> str:
    """The path of the first link in the email whose path contains `path_part`."""
    url = next(word for word in message.body.split() if path_part in word)
    return re.sub(r"^https?://[^/]+", "", url)


def test_signing_up_creates_the_user_and_the_organization_they_own(client, db) -> None:
    response = client.post("/signup/", DANA)
    assert response.status_code == 302
    user = User.objects.get(email="dana@startup.example")
    assert user.full_name == "Dana Diaz" and user.check_password("a-long-enough-pass-9")
    membership = Membership.objects.get(user=user)
    assert (membership.organization.name, membership.organization.slug, membership.role) == (
        "Tensor Garden",
        "tensor-garden",
        Role.OWNER,
    )
    assert "Tensor Garden" in client.get("/organization/").content.decode()


def test_sign_up_emails_a_link_that_verifies_the_address(client, db) -> None:
    client.post("/signup/", DANA)
    address = EmailAddress.objects.get(email="dana@startup.example")
    assert (address.primary, address.verified) == (True, False)
    assert [m.to for m in mail.outbox] == [["dana@startup.example"]]
    confirm = link_in(mail.outbox[0], "/confirm-email/")
    assert "Confirm" in client.get(confirm).content.decode()
    client.post(confirm)
    address.refresh_from_db()
    assert address.verified


def test_sign_up_refuses_a_taken_address_and_creates_nothing(client, alice) -> None:
    response = client.post("/signup/", {**DANA, "email": alice.email})
    assert response.status_code == 200
    assert "already registered with this email address" in response.content.decode()
    assert User.objects.filter(email=alice.email).count() == 1
    assert not Membership.objects.filter(organization__name="Tensor Garden").exists()
    assert mail.outbox == []


def test_sign_up_refuses_a_weak_password_naming_the_field(client, db) -> None:
    response = client.post("/signup/", {**DANA, "password1": "123"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "too short" in page and 'id="id_password1"' in page
    assert not User.objects.filter(email="dana@startup.example").exists()


def test_log_in_by_email_and_log_out(client, alice) -> None:
    response = client.post("/login/", {"login": alice.email, "password": "correct horse battery staple"})
    assert response.status_code == 302
    assert client.get("/organization/").status_code == 200
    client.post("/logout/")
    assert client.get("/organization/").status_code == 302


def test_a_log_in_is_audited_with_how_and_from_where(client, alice) -> None:
    client.post("/login/", {"login": alice.email, "password": "correct horse battery staple"})
    entry = AuditEntry.objects.get(action="user.login")
    assert (entry.actor, entry.object_type, entry.object_id) == (alice, "User", str(alice.pk))
    assert entry.after == {"method": "password", "ip": "127.0.0.1"}


def test_a_wrong_password_is_refused_and_audited(client, alice) -> None:
    response = client.post("/login/", {"login": alice.email, "password": "nope"})
    assert response.status_code == 200
    assert "email address and/or password you specified are not correct" in response.content.decode()
    entry = AuditEntry.objects.get(action="user.login_failed")
    assert (entry.actor, entry.object_id, entry.after) == (None, str(alice.pk), {"ip": "127.0.0.1"})
    assert not AuditEntry.objects.filter(action="user.login").exists()


def test_a_wrong_password_for_no_account_writes_no_audit_row(client, db) -> None:
    response = client.post("/login/", {"login": "nobody@nowhere.example", "password": "nope"})
    assert response.status_code == 200
    assert not AuditEntry.objects.exists()


def test_password_reset_emails_a_link_that_sets_a_new_password(client, alice) -> None:
    client.post("/password/reset/", {"email": alice.email})
    assert len(mail.outbox) == 1
    form_page = client.get(link_in(mail.outbox[0], "/password/reset/key/"), follow=True)
    set_url = form_page.redirect_chain[-1][0]
    client.post(set_url, {"password1": "brand-new-secret-42", "password2": "brand-new-secret-42"})
    alice.refresh_from_db()
    assert alice.check_password("brand-new-secret-42")
