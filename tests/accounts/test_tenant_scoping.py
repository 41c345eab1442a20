"""Alice and Bob (Acme) and Charlie (Globex) never see each other's things: a foreign id is a 404."""

from accounts.models import Invitation, SshKey
from accounts.services.ssh_keys import ssh_key_add
from accounts.services.tokens import api_token_create
from tests.accounts.helpers import ALICE_KEY
from tests.helpers import html_without_csrf_tokens


def test_charlie_does_not_see_alices_keys_and_gets_404_for_their_id(api_as, alice, charlie) -> None:
    key = ssh_key_add(user=alice, public_key=ALICE_KEY)
    listing = api_as(charlie).get("/api/v1/ssh-keys/")
    assert listing.status_code == 200
    assert [k["id"] for k in listing.json()] == [str(charlie.ssh_keys.get().public_id)]  # his own only
    response = api_as(charlie).delete(f"/api/v1/ssh-keys/{key.public_id}/")
    assert response.status_code == 404
    assert SshKey.objects.filter(pk=key.pk).exists()


def test_charlie_cannot_revoke_alices_token_from_the_page(client, alice, acme, charlie) -> None:
    token = api_token_create(user=alice, organization=acme, name="ci").token
    client.force_login(charlie)
    assert client.post(f"/account/tokens/{token.public_id}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_charlie_cannot_switch_into_acme(client, alice, charlie) -> None:
    client.force_login(charlie)
    assert client.post("/organization/switch/", {"slug": "acme-ai"}).status_code == 404
    assert "Acme" not in html_without_csrf_tokens(client.get("/organization/"))


def test_a_malformed_id_is_a_404_not_an_error(api_as, alice) -> None:
    assert api_as(alice).delete("/api/v1/ssh-keys/12/").status_code == 404


def test_bob_sees_acme_members_but_cannot_invite(client, alice, bob) -> None:
    client.force_login(bob)
    response = client.get("/organization/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "alice@acme.example" in page and "Send invitation" not in page
    assert client.post("/organization/", {"email": "x@acme.example", "role": "member"}).status_code == 403
    assert not Invitation.objects.exists()


def test_ids_in_urls_are_random_uuids_not_sequences(alice) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    other = ed25519.Ed25519PrivateKey.generate().public_key()
    line = other.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    first, second = ssh_key_add(user=alice, public_key=ALICE_KEY), ssh_key_add(user=alice, public_key=line)
    assert first.public_id.version == 4 and second.public_id.version == 4
    assert first.public_id.int + 1 != second.public_id.int
