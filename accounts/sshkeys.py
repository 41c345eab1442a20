"""Parsing and fingerprinting of OpenSSH public keys."""

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

MIN_RSA_BITS = 2048
ALLOWED_TYPES = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
}


class InvalidSshKey(ValueError):
    """The text is not an SSH public key we accept; the message says why."""


@dataclass(frozen=True)
class ParsedKey:
    """A validated public key, normalized to one line."""

    key_type: str
    bits: int
    fingerprint: str
    comment: str
    line: str


def parse_ssh_public_key(text: str) -> ParsedKey:
    """Validate an OpenSSH public key line and return its type, size and SHA256 fingerprint."""
    fields = text.strip().split(None, 2)
    if not fields:
        raise InvalidSshKey("The key is empty; paste the contents of your .pub file.")
    if len(fields) < 2:
        raise InvalidSshKey("A public key has a type and a base64 body, such as 'ssh-ed25519 AAAA…'.")
    key_type, blob_text = fields[0], fields[1]
    comment = fields[2].strip() if len(fields) == 3 else ""
    if "PRIVATE KEY" in text:
        raise InvalidSshKey("This is a private key. Never share it; paste the .pub file instead.")
    if key_type not in ALLOWED_TYPES:
        raise InvalidSshKey(
            f"Key type {key_type!r} is not accepted; "
            f"use ed25519, ecdsa or RSA of {MIN_RSA_BITS} bits or more."
        )
    blob = _decode(blob_text)
    key = _load(key_type, blob_text)
    bits = _bits(key)
    if isinstance(key, rsa.RSAPublicKey) and bits < MIN_RSA_BITS:
        raise InvalidSshKey(f"This RSA key has {bits} bits; at least {MIN_RSA_BITS} are required.")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    line = f"{key_type} {blob_text} {comment}".strip()
    return ParsedKey(key_type=key_type, bits=bits, fingerprint=f"SHA256:{digest}", comment=comment, line=line)


def _decode(blob_text: str) -> bytes:
    try:
        return base64.b64decode(blob_text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSshKey("The key's body is not valid base64; was it cut or wrapped?") from None


def _load(key_type: str, blob_text: str) -> object:
    try:
        return load_ssh_public_key(f"{key_type} {blob_text}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidSshKey(
            f"The key's body is not a valid {key_type} key; was it cut, or its type changed?"
        ) from None


def _bits(key: object) -> int:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return 256
    if isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return key.key_size
    raise InvalidSshKey("Only ed25519, ecdsa and RSA keys are accepted.")
