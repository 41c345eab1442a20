"""SSH public keys: accepted types and sizes, fingerprints as ssh-keygen prints them, clear refusals."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from accounts.models import SshKey
from nodeagent.protocol import InvalidSshKey, parse_ssh_public_key
from tests.accounts.helpers import ALICE_FINGERPRINT, ALICE_KEY
from tests.nodeagent.helpers import openssh_line


@pytest.fixture
def alice(alice):
    """Alice before she adds a key: these tests add keys and count them (the factories give one)."""
    SshKey.objects.filter(user=alice).delete()
    return alice


def test_it_fingerprints_an_ed25519_key_as_ssh_keygen_does() -> None:
    parsed = parse_ssh_public_key(ALICE_KEY)
    assert (parsed.key_type, parsed.bits, parsed.fingerprint, parsed.comment) == (
        "ssh-ed25519",
        256,
        ALICE_FINGERPRINT,
        "alice@laptop",
    )


@pytest.mark.parametrize(
    ("make_key", "key_type", "bits"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ecdsa-sha2-nistp256", 256),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ecdsa-sha2-nistp384", 384),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "ssh-rsa", 2048),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096), "ssh-rsa", 4096),
        (ed25519.Ed25519PrivateKey.generate, "ssh-ed25519", 256),
    ],
)
def test_it_accepts_ecdsa_rsa_and_ed25519_keys(make_key, key_type: str, bits: int) -> None:
    parsed = parse_ssh_public_key(openssh_line(make_key()))
    assert (parsed.key_type, parsed.bits) == (key_type, bits)
    assert parsed.fingerprint.startswith("SHA256:") and len(parsed.fingerprint) == 50


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("ssh-ed25519", "type and a base64 body"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "not accepted"),
        ("ssh-ed25519 not*base64!", "not valid base64"),
        ("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x", "not a valid ssh-ed25519 key"),
        ("-----BEGIN OPENSSH PRIVATE KEY----- abc", "private key"),
    ],
)
def test_it_refuses_what_is_not_an_acceptable_key_and_says_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidSshKey, match=reason):
        parse_ssh_public_key(text)


def test_it_refuses_an_rsa_key_under_2048_bits() -> None:
    weak = openssh_line(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(InvalidSshKey, match="1024 bits; at least 2048"):
        parse_ssh_public_key(weak)


def test_it_refuses_a_key_whose_body_was_cut() -> None:
    with pytest.raises(InvalidSshKey):
        parse_ssh_public_key(ALICE_KEY.split()[0] + " " + ALICE_KEY.split()[1][:40])


def test_the_api_adds_a_key_and_refuses_a_bad_one_with_the_reason(api_as, alice) -> None:
    client = api_as(alice)
    good = client.post("/api/v1/ssh-keys/", {"name": "laptop", "public_key": ALICE_KEY}, format="json")
    assert good.status_code == 201 and good.json()["fingerprint"] == ALICE_FINGERPRINT
    bad = client.post("/api/v1/ssh-keys/", {"public_key": "ssh-dss AAAA"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid" and "not accepted" in bad.json()["fields"]["public_key"][0]
    again = client.post("/api/v1/ssh-keys/", {"public_key": ALICE_KEY}, format="json")
    assert again.status_code == 400 and "already added" in again.json()["detail"]
    assert list(SshKey.objects.filter(user=alice).values_list("name", flat=True)) == ["laptop"]


def test_the_key_page_shows_the_error_next_to_the_field(client, alice) -> None:
    client.force_login(alice)
    response = client.post("/account/ssh-keys/", {"name": "x", "public_key": "ssh-rsa AAAA"})
    assert response.status_code == 200
    assert "not a valid ssh-rsa key (the key data is truncated); was it cut" in response.content.decode()
    assert not SshKey.objects.filter(user=alice).exists()


SECOND_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c mallory"
# Keys the node agent would refuse to install (nodeagent.protocol's rule), so the web app refuses them.
SMUGGLED = {
    "a newline smuggling a second key line": f"{ALICE_KEY}\n{SECOND_KEY}",
    "a carriage return smuggling a second key line": f"{ALICE_KEY}\r{SECOND_KEY}",
    "a non-ASCII comment": f"{ALICE_KEY} café",
    "a comment over 256 characters": f"{ALICE_KEY.rsplit(' ', 1)[0]} {'c' * 257}",
}
REASONS = {
    "a newline smuggling a second key line": "this text has several",
    "a carriage return smuggling a second key line": "this text has several",
    "a non-ASCII comment": "printable ASCII, at most 256 characters",
    "a comment over 256 characters": "printable ASCII, at most 256 characters",
}


@pytest.mark.parametrize("case", SMUGGLED)
def test_the_api_refuses_keys_the_node_agent_would_refuse(api_as, alice, case) -> None:
    response = api_as(alice).post("/api/v1/ssh-keys/", {"public_key": SMUGGLED[case]}, format="json")
    assert response.status_code == 400
    assert REASONS[case] in response.json()["fields"]["public_key"][0]
    with pytest.raises(InvalidSshKey):
        parse_ssh_public_key(SMUGGLED[case])  # the agent's own check, the same function
    assert not SshKey.objects.filter(user=alice).exists()


@pytest.mark.parametrize("case", SMUGGLED)
def test_the_key_page_refuses_keys_the_node_agent_would_refuse(client, alice, case) -> None:
    client.force_login(alice)
    response = client.post("/account/ssh-keys/", {"name": "x", "public_key": SMUGGLED[case]})
    assert response.status_code == 200 and REASONS[case] in response.content.decode()
    assert not SshKey.objects.filter(user=alice).exists()


def test_a_comment_of_exactly_256_printable_characters_is_accepted(api_as, alice) -> None:
    line = f"{ALICE_KEY.rsplit(' ', 1)[0]} {'c' * 256}"
    response = api_as(alice).post("/api/v1/ssh-keys/", {"public_key": line}, format="json")
    assert response.status_code == 201 and SshKey.objects.get(user=alice).public_key == line
