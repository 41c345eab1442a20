"""Node agent tokens: the platform calls the agents, so it keeps their tokens encrypted, not hashed."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    key = hashlib.sha256(b"voltpark-agent-token:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_agent_token(token: str) -> str:
    """Encrypt a node agent's bearer token for storage on the node row."""
    return _fernet().encrypt(token.encode()).decode()


def decrypt_agent_token(ciphertext: str) -> str:
    """The bearer token to send to a node's agent; empty when none is stored or it cannot be read."""
    if not ciphertext:
        return ""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        return ""
