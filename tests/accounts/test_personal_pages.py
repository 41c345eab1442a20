"""SSH key and API token pages: bounded queries, tokens shown once and never cached."""

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiToken, SshKey
from accounts.services.ssh_keys import ssh_key_add
from accounts.services.tokens import api_token_create, hash_token
from tests.accounts.helpers import ALICE_KEY
from tests.nodeagent.helpers import openssh_line


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def _add_keys(user, n: int) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    for _ in range(n):
        ssh_key_add(user=user, public_key=openssh_line(ed25519.Ed25519PrivateKey.generate()))


def test_the_ssh_key_page_costs_the_same_queries_for_2_or_20_keys(client, alice) -> None:
    client.force_login(alice)
    _add_keys(alice, 2)
    few = _queries(client, "/account/ssh-keys/")
    _add_keys(alice, 18)
    assert SshKey.objects.filter(user=alice).count() == 20
    assert _queries(client, "/account/ssh-keys/") == few


def test_the_token_page_costs_the_same_queries_for_2_or_20_tokens(client, alice, acme) -> None:
    client.force_login(alice)
    for n in range(2):
        api_token_create(user=alice, organization=acme, name=f"t{n}")
    few = _queries(client, "/account/tokens/")
    for n in range(18):
        api_token_create(user=alice, organization=acme, name=f"u{n}")
    assert ApiToken.objects.filter(user=alice).count() == 20
    assert _queries(client, "/account/tokens/") == few


def test_a_new_token_is_shown_once_and_the_page_is_not_cached(client, alice) -> None:
    client.force_login(alice)
    created = client.post("/account/tokens/", {"name": "ci", "scopes": ["read"]})
    assert created.status_code == 302 and created["Location"] == "/account/tokens/"
    shown = client.get("/account/tokens/")
    secret = re.search(r'<code class="secret" id="new-token">(vp_[^<]+)</code>', shown.content.decode())
    assert secret and "no-store" in shown["Cache-Control"]
    assert ApiToken.objects.get(user=alice, name="ci").token_hash == hash_token(secret.group(1))
    assert 'id="new-token"' not in client.get("/account/tokens/").content.decode()
    assert ApiToken.objects.filter(user=alice).count() == 1


def test_adding_a_key_through_the_page_shows_its_fingerprint(client, alice) -> None:
    client.force_login(alice)
    response = client.post("/account/ssh-keys/", {"name": "laptop", "public_key": ALICE_KEY}, follow=True)
    assert "SHA256:PXB0DbrO3z8NdHCjRPyItlg5XJBduqf5qF54IRvY5XU" in response.content.decode()
    assert SshKey.objects.filter(user=alice, name="laptop").count() == 1


def test_a_bad_key_is_refused_on_its_field(client, alice) -> None:
    client.force_login(alice)
    response = client.post("/account/ssh-keys/", {"name": "x", "public_key": "ssh-rsa nonsense"})
    assert response.status_code == 200 and response.context["form"].errors["public_key"]
    assert 'aria-invalid="true"' in response.content.decode()
    assert not SshKey.objects.exists()
