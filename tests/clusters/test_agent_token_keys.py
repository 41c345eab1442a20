"""Agent tokens are encrypted under AGENT_TOKEN_KEYS (newest first), not SECRET_KEY: a key rotation
keeps the fleet reachable, and a token no key opens is an error someone sees, never an empty token."""

import logging
from collections.abc import Callable

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from clusters.choices import HealthEventKind, NodeState
from clusters.models import HealthEvent, Node
from clusters.services.agent_tokens import AgentTokenUnreadable, decrypt_agent_token, encrypt_agent_token
from clusters.services.telemetry import fleet_poll
from tests.clusters.helpers import Fleet

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored_token(node: Node) -> str:
    return Node.objects.get(pk=node.pk).agent_token_encrypted


def test_a_token_is_encrypted_under_the_newest_key_and_any_listed_key_decrypts(settings) -> None:
    settings.AGENT_TOKEN_KEYS = [OLD]
    under_old = encrypt_agent_token("agent-secret")
    settings.AGENT_TOKEN_KEYS = [NEW, OLD]
    under_new = encrypt_agent_token("agent-secret")
    assert Fernet(NEW.encode()).decrypt(under_new.encode()) == b"agent-secret"
    assert decrypt_agent_token(under_old) == decrypt_agent_token(under_new) == "agent-secret"


def test_changing_the_secret_key_does_not_lose_the_agent_tokens(settings) -> None:
    ciphertext = encrypt_agent_token("agent-secret")
    settings.SECRET_KEY = "another-" + "Zq9w8e7r6t5y4u3i2o1p" * 3
    assert decrypt_agent_token(ciphertext) == "agent-secret"


def test_a_token_no_key_opens_raises_rather_than_reading_as_empty(settings) -> None:
    settings.AGENT_TOKEN_KEYS = [OLD]
    ciphertext = encrypt_agent_token("agent-secret")
    settings.AGENT_TOKEN_KEYS = [NEW]
    with pytest.raises(AgentTokenUnreadable):
        decrypt_agent_token(ciphertext)
    assert decrypt_agent_token("") == ""  # a node with no token stored


def test_rotation_keeps_the_fleet_reachable_and_moves_every_token_to_the_new_key(
    settings, fleet_of: Callable[..., Fleet], capsys
) -> None:
    settings.AGENT_TOKEN_KEYS = [OLD]
    fleet = fleet_of(2)
    before = stored_token(fleet.nodes[0])
    settings.AGENT_TOKEN_KEYS = [NEW, OLD]
    assert fleet_poll().answered == 2

    call_command("agent_tokens_rotate")
    assert "Re-encrypted 2 agent tokens" in capsys.readouterr().out
    assert stored_token(fleet.nodes[0]) != before
    settings.AGENT_TOKEN_KEYS = [NEW]  # the old key dropped
    assert fleet_poll().answered == 2
    assert Node.objects.filter(state=NodeState.AVAILABLE).count() == 2


def test_a_token_no_key_opens_is_logged_and_marks_its_node_with_the_reason(
    settings, fleet_of: Callable[..., Fleet], caplog
) -> None:
    settings.AGENT_TOKEN_KEYS = [OLD]
    fleet = fleet_of(1)
    settings.AGENT_TOKEN_KEYS = [NEW]
    with caplog.at_level(logging.ERROR, logger="clusters.services.agent"):
        report = fleet_poll()
        fleet_poll()
    assert report.answered == 0 and report.errors["token"] >= 1
    node = Node.objects.get(pk=fleet.nodes[0].pk)
    assert node.state == NodeState.UNHEALTHY
    event = HealthEvent.objects.get(node=node)
    assert event.kind == HealthEventKind.UNREACHABLE
    assert "agent token cannot be decrypted with AGENT_TOKEN_KEYS" in event.detail
    assert "cannot be decrypted" in node.state_reason
    logged = [r for r in caplog.records if "was not called" in r.getMessage()]
    assert len(logged) == 1 and node.agent_url in logged[0].getMessage()  # once, not every sweep


def test_rotation_names_the_nodes_whose_token_no_key_opens(settings, fleet_of: Callable[..., Fleet]) -> None:
    settings.AGENT_TOKEN_KEYS = [OLD]
    fleet = fleet_of(1)
    settings.AGENT_TOKEN_KEYS = [NEW]
    before = stored_token(fleet.nodes[0])
    with pytest.raises(CommandError, match=fleet.nodes[0].hostname):
        call_command("agent_tokens_rotate")
    assert stored_token(fleet.nodes[0]) == before
