"""Sign-up, log-in, log-out and password reset in the browser flow."""

from django.core import mail

from accounts.choices import Role
from accounts.models import Membership, User


def test_signing_up_creates_the_user_and_the_organization_they_own(client, db) -> None:
    response = client.post(
        "/signup/",
        {
            "email": "Dana@Startup.example",
            "full_name": "Dana",
            "password": "a-long-enough-pass-9",
            "organization_name": "Tensor Garden",
            "organization_kind": "startup",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="dana@startup.example")
    membership = Membership.objects.get(user=user)
    assert (membership.organization.name, membership.organization.slug, membership.role) == (
        "Tensor Garden",
        "tensor-garden",
        Role.OWNER,
    )
    assert "Tensor Garden" in client.get("/organization/").content.decode()


def test_sign_up_refuses_a_taken_email_and_a_weak_password(client, alice) -> None:
    response = client.post("/signup/", {"email": alice.email, "full_name": "A", "password": "123"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "already exists" in page and "too short" in page
    assert User.objects.filter(email=alice.email).count() == 1


def test_log_in_by_email_and_log_out(client, alice) -> None:
    response = client.post("/login/", {"username": alice.email, "password": "correct horse battery staple"})
    assert response.status_code == 302
    assert client.get("/organization/").status_code == 200
    client.post("/logout/")
    assert client.get("/organization/").status_code == 302


def test_a_wrong_password_is_refused(client, alice) -> None:
    response = client.post("/login/", {"username": alice.email, "password": "nope"})
    assert response.status_code == 200
    assert "correct email and password" in response.content.decode().replace("\n", " ")


def test_password_reset_emails_a_link_that_sets_a_new_password(client, alice) -> None:
    client.post("/password-reset/", {"email": alice.email})
    assert len(mail.outbox) == 1
    link = next(word for word in mail.outbox[0].body.split() if "/reset/" in word)
    path = link[link.index("/reset/") :]
    form_page = client.get(path, follow=True)
    set_url = form_page.redirect_chain[-1][0]
    client.post(set_url, {"new_password1": "brand-new-secret-42", "new_password2": "brand-new-secret-42"})
    alice.refresh_from_db()
    assert alice.check_password("brand-new-secret-42")
