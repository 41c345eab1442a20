"""Helpers of the node agent tests (and of the platform's SSH key tests, since the platform parses
keys with nodeagent.protocol): no Django here, as in the agent."""

from typing import Any

from cryptography.hazmat.primitives import serialization


def openssh_line(private_key: Any, comment: str = "test") -> str:
    """The OpenSSH public key line of a cryptography private key."""
    blob = private_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{blob.decode()} {comment}"
