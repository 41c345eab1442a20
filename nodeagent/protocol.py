"""What the platform and the node agent must agree on, written once for both.

The SSH public key rules (a key the web app accepts is a key the agent installs), the lease
account's name, the body of a lease's PUT and its peers, and the GPU UUIDs of the simulated
fleet. Standard library only: the platform imports this module and nothing else of the agent,
and the agent is deployed without Django.

The body of `PUT /v1/leases/{lease_id}` (the agent refuses anything else with a 400 naming the
field):

    {
      "gpu_indices": [0, 1],            # this node's GPUs for the lease, distinct, non-empty
      "ssh_public_keys": ["ssh-ed25519 AAAA… alice@laptop"],   # the whole set: a PUT replaces it
      "sudo": false,                    # optional; true only when the lease holds every GPU
      "peers": [                        # optional; every node of a multi-node lease, this one too
        {"hostname": "tx1-c01-n001", "address": "10.1.0.11", "slots": 8}
      ],
      "placement": 1234                 # optional; which placement of the lease on this node (the
    }                                   # platform's, increasing when the lease is placed again)

A lease revoked on a node is not installed there again (a late retry of a start must not give
access back after the end) unless the PUT names a later placement than the one revoked: a lease
that moved away from a failing node before it started, and later back onto it, starts there.
"""

import base64
import binascii
import hashlib
import ipaddress
import re
import struct
import uuid
from dataclasses import dataclass

ED25519 = "ssh-ed25519"
RSA = "ssh-rsa"
ECDSA_CURVES = {
    "ecdsa-sha2-nistp256": ("nistp256", 256),
    "ecdsa-sha2-nistp384": ("nistp384", 384),
    "ecdsa-sha2-nistp521": ("nistp521", 521),
}
KEY_TYPES = (ED25519, *ECDSA_CURVES, RSA)
MIN_RSA_BITS = 2048
MAX_KEY_LENGTH = 16 * 1024
MAX_COMMENT_LENGTH = 256
# A comment ends up on an authorized_keys line: anything that could start a new line there, or
# that sshd and a terminal could read differently, is refused.
COMMENT_PATTERN = re.compile(rf"[\x20-\x7e]{{0,{MAX_COMMENT_LENGTH}}}")
LEASE_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# An RFC 1123 host name: it goes into a hostfile and an /etc/hosts line, so nothing else may.
HOSTNAME_PATTERN = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
MAX_PEERS = 512
MAX_SLOTS = 64


class InvalidSshKey(ValueError):
    """The text is not an SSH public key we accept; the message says why, for a person."""


@dataclass(frozen=True)
class ParsedKey:
    """A validated public key, normalized to one `type body comment` line."""

    key_type: str
    bits: int
    fingerprint: str
    comment: str
    line: str


def parse_ssh_public_key(text: object) -> ParsedKey:
    """Validate one OpenSSH public key line: its type, body, size and comment; fingerprint it."""
    if not isinstance(text, str) or len(text) > MAX_KEY_LENGTH:
        raise InvalidSshKey("A public key is one line of text of at most 16 KiB.")
    if "PRIVATE KEY" in text:
        raise InvalidSshKey("This is a private key. Never share it; paste the .pub file instead.")
    text = text.strip()
    if not text:
        raise InvalidSshKey("The key is empty; paste the contents of your .pub file.")
    if "\n" in text or "\r" in text:
        raise InvalidSshKey("A public key is one line; this text has several.")
    fields = text.split(None, 2)
    key_type = fields[0]
    if key_type not in KEY_TYPES:
        raise InvalidSshKey(
            f"Key type {key_type[:40]!r} is not accepted: a key must start with ssh-ed25519, "
            f"ecdsa-sha2-nistp256/384/521 or ssh-rsa (RSA of {MIN_RSA_BITS} bits or more), with no options."
        )
    if len(fields) < 2:
        raise InvalidSshKey("A public key has a type and a base64 body, such as 'ssh-ed25519 AAAA…'.")
    body, comment = fields[1], fields[2].strip() if len(fields) == 3 else ""
    if not COMMENT_PATTERN.fullmatch(comment):
        raise InvalidSshKey(
            f"The key's comment must be printable ASCII, at most {MAX_COMMENT_LENGTH} characters."
        )
    blob = _decode(body)
    bits = _check_blob(key_type, blob)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    line = " ".join(part for part in (key_type, body, comment) if part)
    return ParsedKey(key_type=key_type, bits=bits, fingerprint=f"SHA256:{digest}", comment=comment, line=line)


def _decode(body: str) -> bytes:
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSshKey("The key's body is not valid base64; was it cut or wrapped?") from None


def _check_blob(key_type: str, data: bytes) -> int:
    """The key's size in bits, once its wire-format body matches its type."""
    blob = _Blob(data)
    try:
        embedded = blob.string().decode("ascii")
        if embedded != key_type:
            raise ValueError(f"the body says {embedded!r}")
        bits = _check_fields(key_type, blob)
        if not blob.done():
            raise ValueError("there are trailing bytes after the key")
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidSshKey(
            f"The key's body is not a valid {key_type} key ({error}); was it cut, or its type changed?"
        ) from None
    if key_type == RSA and bits < MIN_RSA_BITS:
        raise InvalidSshKey(f"This RSA key has {bits} bits; at least {MIN_RSA_BITS} are required.")
    return bits


def _check_fields(key_type: str, blob: "_Blob") -> int:
    if key_type == ED25519:
        if len(blob.string()) != 32:
            raise ValueError("an ed25519 key is 32 bytes")
        return 256
    if key_type == RSA:
        exponent, modulus = blob.string(), blob.string()
        if not exponent or not modulus:
            raise ValueError("an RSA key needs an exponent and a modulus")
        return int.from_bytes(modulus, "big").bit_length()
    curve, bits = ECDSA_CURVES[key_type]
    if blob.string().decode("ascii", "replace") != curve:
        raise ValueError("the curve does not match the key type")
    if not blob.string():
        raise ValueError("the ECDSA point is empty")
    return bits


class _Blob:
    """Reads the length-prefixed fields of an SSH wire-format key body."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def string(self) -> bytes:
        if self.offset + 4 > len(self.data):
            raise ValueError("the key data is truncated")
        (length,) = struct.unpack_from(">I", self.data, self.offset)
        start = self.offset + 4
        if start + length > len(self.data):
            raise ValueError("the key data is truncated")
        self.offset = start + length
        return self.data[start : self.offset]

    def done(self) -> bool:
        return self.offset == len(self.data)


class InvalidPeer(ValueError):
    """A peer of a multi-node lease that the agent cannot write; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Peer:
    """One node of a multi-node lease, as its hostfile and hosts file name it."""

    hostname: str
    address: str
    slots: int


def parse_peers(value: object) -> tuple[Peer, ...]:
    """Validate the `peers` of a lease's PUT: a list of {hostname, address, slots}, names distinct."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_PEERS:
        raise InvalidPeer("peers", f"peers must be a list of at most {MAX_PEERS} objects.")
    peers = tuple(_parse_peer(item, f"peers[{i}]") for i, item in enumerate(value))
    names = [peer.hostname.lower() for peer in peers]
    if len(set(names)) != len(names):
        raise InvalidPeer("peers", "peers must not name the same hostname twice.")
    return peers


def _parse_peer(item: object, where: str) -> Peer:
    if not isinstance(item, dict) or set(item) != {"hostname", "address", "slots"}:
        raise InvalidPeer(where, f"{where} must be an object with exactly hostname, address and slots.")
    hostname, address, slots = item["hostname"], item["address"], item["slots"]
    if not isinstance(hostname, str) or not HOSTNAME_PATTERN.fullmatch(hostname):
        raise InvalidPeer(f"{where}.hostname", f"{where}.hostname must be a DNS host name.")
    try:
        canonical = str(ipaddress.ip_address(address if isinstance(address, str) else ""))
    except ValueError:
        raise InvalidPeer(f"{where}.address", f"{where}.address must be an IPv4 or IPv6 address.") from None
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= MAX_SLOTS:
        raise InvalidPeer(f"{where}.slots", f"{where}.slots must be an integer from 1 to {MAX_SLOTS}.")
    return Peer(hostname, canonical, slots)


def account_for_lease(lease_id: str) -> str:
    """Unix account of a lease: vp- and the first 12 lowercase alphanumerics of its id."""
    return "vp-" + "".join(ch for ch in lease_id.lower() if ch.isascii() and ch.isalnum())[:12]


def is_valid_lease_id(lease_id: str) -> bool:
    """Whether the id can name a lease's account (the agent refuses any other)."""
    return bool(LEASE_ID_PATTERN.fullmatch(lease_id)) and account_for_lease(lease_id) != "vp-"


def simulated_gpu_uuid(hostname: str, index: int) -> str:
    """The UUID of a simulated GPU: the simulator reports it, the fleet seeder stores the same."""
    return "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{hostname}/gpu{index}"))
