"""Validation of SSH public keys and lease ids, and the lease account name."""

from __future__ import annotations

import base64
import binascii
import re
import struct

from nodeagent.model import AgentError

ED25519 = "ssh-ed25519"
RSA = "ssh-rsa"
ECDSA_CURVES = {
    "ecdsa-sha2-nistp256": "nistp256",
    "ecdsa-sha2-nistp384": "nistp384",
    "ecdsa-sha2-nistp521": "nistp521",
}
MIN_RSA_BITS = 2048
MAX_KEY_LENGTH = 16 * 1024
LEASE_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# A comment ends up on an authorized_keys line; anything that could start a new
# line or hide an option there is refused.
COMMENT_PATTERN = re.compile(r"[\x20-\x7e]{0,256}")


class _Blob:
    """Reads the length-prefixed fields of an SSH wire-format key blob."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def string(self) -> bytes:
        """Read one uint32-length-prefixed string."""
        if self.offset + 4 > len(self.data):
            raise ValueError("the key data is truncated")
        (length,) = struct.unpack_from(">I", self.data, self.offset)
        start = self.offset + 4
        if start + length > len(self.data):
            raise ValueError("the key data is truncated")
        self.offset = start + length
        return self.data[start : self.offset]

    def done(self) -> bool:
        """Whether every byte was consumed."""
        return self.offset == len(self.data)


def account_for_lease(lease_id: str) -> str:
    """Unix account of a lease: vp- and the first 12 lowercase alphanumerics."""
    return "vp-" + "".join(ch for ch in lease_id.lower() if ch.isascii() and ch.isalnum())[:12]


def validate_lease_id(lease_id: str) -> str:
    """Return the lease id, or refuse one that cannot name an account."""
    if not LEASE_ID_PATTERN.fullmatch(lease_id) or account_for_lease(lease_id) == "vp-":
        raise AgentError(
            400,
            "invalid_lease_id",
            "The lease id must be 1-128 characters of letters, digits, '_', '.', ':' "
            "or '-', with at least one letter or digit.",
        )
    return lease_id


def _check_body(key_type: str, blob: _Blob) -> None:
    """Check the fields after the type name for the given key type."""
    if key_type == ED25519:
        if len(blob.string()) != 32:
            raise ValueError("an ed25519 key is 32 bytes")
    elif key_type == RSA:
        exponent, modulus = blob.string(), blob.string()
        if not exponent or int.from_bytes(modulus, "big").bit_length() < MIN_RSA_BITS:
            raise ValueError(f"an RSA key must be at least {MIN_RSA_BITS} bits")
    else:
        if blob.string().decode("ascii", "replace") != ECDSA_CURVES[key_type]:
            raise ValueError("the curve does not match the key type")
        if not blob.string():
            raise ValueError("the ECDSA point is empty")
    if not blob.done():
        raise ValueError("trailing bytes after the key")


def _refuse_key(position: int, why: str) -> AgentError:
    """The 400 error for the key at a position in the request."""
    return AgentError(
        400, "invalid_ssh_key", f"ssh_public_keys[{position}] is not a valid SSH public key: {why}."
    )


def normalize_public_key(text: str, position: int = 0) -> str:
    """Validate one OpenSSH public key line and return it as 'type blob comment'."""
    if not isinstance(text, str) or len(text) > MAX_KEY_LENGTH:
        raise _refuse_key(position, "expected a string of at most 16 KiB")
    parts = text.strip().split(None, 2)
    if len(parts) < 2 or (parts[0] not in ECDSA_CURVES and parts[0] not in (ED25519, RSA)):
        raise _refuse_key(position, "it must start with ssh-ed25519, ecdsa-sha2-nistp* or ssh-rsa")
    key_type, encoded = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ""
    if not COMMENT_PATTERN.fullmatch(comment):
        raise _refuse_key(position, "the comment must be printable ASCII on one line")
    try:
        blob = _Blob(base64.b64decode(encoded, validate=True))
        embedded = blob.string().decode("ascii")
        if embedded != key_type:
            raise ValueError(f"the blob says {embedded!r} but the line says {key_type!r}")
        _check_body(key_type, blob)
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _refuse_key(position, "the key data is not valid base64") from exc
    except ValueError as exc:
        raise _refuse_key(position, str(exc)) from exc
    return " ".join(p for p in (key_type, encoded, comment) if p)


def normalize_public_keys(values: object) -> tuple[str, ...]:
    """Validate the ssh_public_keys list of a lease request."""
    if not isinstance(values, list):
        raise AgentError(400, "invalid_body", "ssh_public_keys must be a list of strings.")
    return tuple(normalize_public_key(value, i) for i, value in enumerate(values))
