"""The agent's checks of a lease request: its id and its SSH public keys, refused as 400s."""

from nodeagent.model import AgentError
from nodeagent.protocol import InvalidSshKey, is_valid_lease_id, parse_ssh_public_key


def validate_lease_id(lease_id: str) -> str:
    """Return the lease id, or refuse one that cannot name an account."""
    if not is_valid_lease_id(lease_id):
        raise AgentError(
            400,
            "invalid_lease_id",
            "The lease id must be 1-128 characters of letters, digits, '_', '.', ':' "
            "or '-', with at least one letter or digit.",
            field="lease_id",
        )
    return lease_id


def normalize_public_key(text: object, position: int = 0) -> str:
    """Validate one OpenSSH public key line and return it as 'type body comment'."""
    try:
        return parse_ssh_public_key(text).line
    except InvalidSshKey as error:
        field = f"ssh_public_keys[{position}]"
        raise AgentError(400, "invalid_ssh_key", f"{field}: {error}", field) from None


def normalize_public_keys(values: object) -> tuple[str, ...]:
    """Validate the ssh_public_keys list of a lease request."""
    if not isinstance(values, list):
        raise AgentError(400, "invalid_body", "ssh_public_keys must be a list of strings.", "ssh_public_keys")
    return tuple(normalize_public_key(value, i) for i, value in enumerate(values))
