"""API tokens: shown once, stored hashed, last use recorded, refused once revoked."""

import hashlib

from django.core.management import call_command

from accounts.models import ApiToken
from accounts.services.tokens import api_token_create, api_token_revoke


def test_it_stores_only_a_hash_of_the_token(alice, acme) -> None:
    issued = api_token_create(user=alice, organization=acme, name="ci")
    row = ApiToken.objects.get(pk=issued.token.pk)
    assert issued.secret.startswith("vp_") and len(issued.secret) > 40
    assert row.token_hash == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in str(ApiToken.objects.filter(pk=row.pk).values().get())


def test_a_token_authenticates_and_records_its_last_use(client, alice, acme) -> None:
    from django.utils import timezone

    issued = api_token_create(user=alice, organization=acme, name="ci")
    assert issued.token.last_used_at is None
    before = timezone.now()
    response = client.get("/api/v1/ssh-keys/", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 200
    assert before <= ApiToken.objects.get(pk=issued.token.pk).last_used_at <= timezone.now()


def test_a_revoked_token_is_refused(client, alice, acme) -> None:
    issued = api_token_create(user=alice, organization=acme, name="ci")
    api_token_revoke(actor=alice, token=issued.token)
    response = client.get("/api/v1/ssh-keys/", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_a_made_up_token_is_refused(client, db) -> None:
    response = client.get("/api/v1/regions/", HTTP_AUTHORIZATION="Bearer vp_nonsense")
    assert response.status_code == 401


def test_a_token_cannot_be_made_for_an_organization_the_user_is_not_in(alice, globex) -> None:
    from django.core.exceptions import ValidationError

    try:
        api_token_create(user=alice, organization=globex, name="sneaky")
    except ValidationError as error:
        assert "not a member" in str(error)
    else:
        raise AssertionError("a token for a foreign organization was issued")
    assert not ApiToken.objects.filter(user=alice).exists()


def test_the_token_page_shows_a_new_token_once_and_revokes_it(client, alice) -> None:
    client.force_login(alice)
    created = client.post("/account/tokens/", {"name": "laptop", "scopes": ["read", "book"]}, follow=True)
    token = ApiToken.objects.get(user=alice)
    shown = created.content.decode()
    assert token.prefix in shown and 'id="new-token"' in shown
    assert 'id="new-token"' not in client.get("/account/tokens/").content.decode()
    client.post(f"/account/tokens/{token.public_id}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_create_token_prints_a_working_token_on_the_last_line(client, alice, capsys) -> None:
    call_command("create_token", "--email", alice.email, "--name", "script")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert client.get("/api/v1/regions/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_create_token_gives_staff_a_token_without_an_organization(stella, capsys) -> None:
    call_command("create_token", "--email", stella.email)
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("vp_")
    assert ApiToken.objects.get(user=stella).organization is None


def test_create_token_asks_for_org_when_the_user_has_several(alice, globex, capsys) -> None:
    from django.core.management.base import CommandError

    from tests.factories import MembershipFactory

    MembershipFactory.create(user=alice, organization=globex)
    try:
        call_command("create_token", "--email", alice.email)
    except CommandError as error:
        assert "--org" in str(error)
    else:
        raise AssertionError("expected a refusal")
    call_command("create_token", "--email", alice.email, "--org", "globex")
    assert ApiToken.objects.get(user=alice).organization == globex
