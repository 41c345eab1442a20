"""Node agent tokens: the platform calls the agents, so it keeps their tokens encrypted, not hashed.

They are encrypted under their own keys, `AGENT_TOKEN_KEYS` (Fernet keys, newest first), never under
SECRET_KEY: a SECRET_KEY rotation (sessions, password resets) must not lock the platform out of the
fleet. New tokens are encrypted under the newest key; any listed key decrypts, so a key is rotated
by putting a new one first, running `manage.py agent_tokens_rotate`, then dropping the old one.
"""

import functools
import logging
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction

from clusters.models import Node

logger = logging.getLogger(__name__)


class AgentTokenUnreadable(Exception):
    """No key of AGENT_TOKEN_KEYS decrypts a stored agent token (a key was dropped or changed)."""


@functools.lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _fernet() -> MultiFernet:
    return _multi_fernet(tuple(settings.AGENT_TOKEN_KEYS))


def encrypt_agent_token(token: str) -> str:
    """Encrypt a node agent's bearer token, under the newest key, for storage on the node row."""
    return _fernet().encrypt(token.encode()).decode()


def decrypt_agent_token(ciphertext: str) -> str:
    """The bearer token to send to a node's agent ("" when none is stored); raises
    AgentTokenUnreadable when no key opens it, rather than sending an empty token."""
    if not ciphertext:
        return ""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise AgentTokenUnreadable("no key of AGENT_TOKEN_KEYS decrypts it") from None


@dataclass
class RotationReport:
    """What a rotation did: tokens now under the newest key, and the nodes whose token no key opens."""

    rotated: int = 0
    unreadable: list[str] = field(default_factory=list)


def agent_tokens_rotate() -> RotationReport:
    """Re-encrypt every node's agent token under the newest key of AGENT_TOKEN_KEYS.

    Each node is one conditional UPDATE on the ciphertext it read, so a token set meanwhile (by a
    re-seed or an operator) is left as it was written, and running it twice changes nothing twice.
    """
    report = RotationReport()
    nodes = Node.objects.exclude(agent_token_encrypted="").values_list(
        "id", "hostname", "agent_token_encrypted"
    )
    for node_id, hostname, ciphertext in nodes.iterator():
        try:
            rotated = _fernet().rotate(ciphertext.encode()).decode()
        except InvalidToken:
            logger.error("node %s: its agent token cannot be decrypted with AGENT_TOKEN_KEYS", hostname)
            report.unreadable.append(hostname)
            continue
        with transaction.atomic():
            written = Node.objects.filter(id=node_id, agent_token_encrypted=ciphertext).update(
                agent_token_encrypted=rotated
            )
        report.rotated += written
    return report
