"""SSH public key validation and lease account names."""

from __future__ import annotations

import base64
import struct

import pytest

from nodeagent.keys import normalize_public_key, validate_lease_id
from nodeagent.model import AgentError
from nodeagent.protocol import account_for_lease


def wire(*fields: bytes) -> str:
    """Base64 of SSH wire-format length-prefixed fields."""
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


def refusal(text: object) -> AgentError:
    """The error a key is refused with."""
    with pytest.raises(AgentError) as caught:
        normalize_public_key(text)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_ssh_key"
    return caught.value


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_it_accepts_each_supported_key_type(ssh_keys: dict[str, str], kind: str) -> None:
    assert normalize_public_key(ssh_keys[kind]) == ssh_keys[kind]


def test_it_strips_surrounding_whitespace_and_keeps_the_comment(ssh_keys: dict[str, str]) -> None:
    assert normalize_public_key(f"  {ssh_keys['ed25519']} \n") == ssh_keys["ed25519"]


def test_it_accepts_a_key_without_a_comment(ssh_keys: dict[str, str]) -> None:
    bare = " ".join(ssh_keys["ed25519"].split()[:2])
    assert normalize_public_key(bare) == bare


def test_it_refuses_a_string_that_is_not_a_key() -> None:
    assert "must start with" in refusal("hello world").detail


def test_it_refuses_a_blob_that_is_not_base64() -> None:
    assert "base64" in refusal("ssh-ed25519 !!!notbase64!!! x").detail


def test_it_refuses_a_blob_whose_embedded_type_differs(ssh_keys: dict[str, str]) -> None:
    rsa_blob = ssh_keys["rsa"].split()[1]
    assert "the body says 'ssh-rsa'" in refusal(f"ssh-ed25519 {rsa_blob} x").detail


def test_it_refuses_a_truncated_ed25519_key() -> None:
    assert "32 bytes" in refusal(f"ssh-ed25519 {wire(b'ssh-ed25519', b'short')}").detail


def test_it_refuses_trailing_bytes_after_the_key() -> None:
    blob = wire(b"ssh-ed25519", b"k" * 32, b"extra")
    assert "trailing" in refusal(f"ssh-ed25519 {blob}").detail


def test_it_refuses_an_ecdsa_key_on_another_curve() -> None:
    blob = wire(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + b"p" * 64)
    assert "curve" in refusal(f"ecdsa-sha2-nistp256 {blob}").detail


def test_it_refuses_an_rsa_key_under_2048_bits(ssh_keys: dict[str, str]) -> None:
    assert "2048" in refusal(ssh_keys["rsa1024"]).detail


def test_it_refuses_a_comment_that_would_add_a_line(ssh_keys: dict[str, str]) -> None:
    refusal(ssh_keys["ed25519"] + "\nssh-ed25519 AAAA attacker")


def test_it_refuses_authorized_keys_options_before_the_key(ssh_keys: dict[str, str]) -> None:
    refusal('command="/bin/sh" ' + ssh_keys["ed25519"])


def test_it_refuses_a_key_that_is_not_a_string() -> None:
    assert "one line of text of at most 16 KiB" in refusal(42).detail


def test_it_names_the_account_from_the_first_12_alphanumerics() -> None:
    assert account_for_lease("LSE_01HX-ABCDEFGHIJK") == "vp-lse01hxabcde"
    assert account_for_lease("3f2a9c1e-7b4d-4e0f") == "vp-3f2a9c1e7b4d"


def test_it_refuses_a_lease_id_without_letters_or_digits() -> None:
    with pytest.raises(AgentError) as caught:
        validate_lease_id("---")
    assert caught.value.code == "invalid_lease_id"


def test_it_refuses_a_lease_id_with_a_slash_or_space() -> None:
    for bad in ("a/b", "a b", "x" * 129):
        with pytest.raises(AgentError):
            validate_lease_id(bad)


def test_it_rewrites_a_key_split_by_tabs_or_several_spaces_on_one_line(ssh_keys: dict[str, str]) -> None:
    key_type, blob, comment = ssh_keys["ed25519"].split(" ", 2)
    assert normalize_public_key(f"{key_type}\t {blob}   {comment}") == ssh_keys["ed25519"]
