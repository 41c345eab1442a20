"""Adding and removing a user's SSH public keys, and withdrawing keys from what they open.

Leases (clusters, above accounts) hold copies of keys on their nodes. Accounts cannot import
clusters, so clusters registers a `KeysWithdrawn` hook when Django starts (clusters/apps.py), the
way billing answers booking: deleting a key, or removing a member from an organization, calls it in
the same transaction, and the key leaves every live lease it was on.
"""

from collections.abc import Sequence
from typing import Protocol

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Organization, SshKey, User
from accounts.services.audit import audit_record
from nodeagent.protocol import InvalidSshKey, parse_ssh_public_key


class KeysWithdrawn(Protocol):
    """What happens elsewhere when keys may no longer open anything (of one organization, or at all)."""

    def __call__(self, *, key_ids: Sequence[int], organization: Organization | None, actor: User) -> None: ...


_withdrawn_hooks: list[KeysWithdrawn] = []


def keys_withdrawn_register(hook: KeysWithdrawn) -> None:
    """Called once per hook, from an app's AppConfig.ready (clusters: the live leases' keys)."""
    if hook not in _withdrawn_hooks:
        _withdrawn_hooks.append(hook)


def keys_withdraw(*, key_ids: Sequence[int], organization: Organization | None, actor: User) -> None:
    """Take the keys off whatever they open: in `organization` only, or everywhere when None."""
    if not key_ids:
        return
    for hook in _withdrawn_hooks:
        hook(key_ids=key_ids, organization=organization, actor=actor)


@transaction.atomic
def ssh_key_add(*, user: User, public_key: str, name: str = "") -> SshKey:
    """Validate and store a public key for `user`; a duplicate or bad key raises ValidationError."""
    try:
        parsed = parse_ssh_public_key(public_key)
    except InvalidSshKey as error:
        raise ValidationError({"public_key": str(error)}) from None
    if SshKey.objects.filter(user=user, fingerprint=parsed.fingerprint).exists():
        raise ValidationError({"public_key": f"You already added this key ({parsed.fingerprint})."})
    key = SshKey.objects.create(
        user=user,
        name=(name or parsed.comment or parsed.key_type)[:100],
        key_type=parsed.key_type,
        bits=parsed.bits,
        public_key=parsed.line,
        fingerprint=parsed.fingerprint,
    )
    audit_record(actor=user, action="ssh_key.add", obj=key, after={"fingerprint": key.fingerprint})
    return key


@transaction.atomic
def ssh_key_delete(*, user: User, key: SshKey) -> None:
    """Remove one of the user's keys; it leaves every live lease at once (the nodes within a sweep)."""
    keys_withdraw(key_ids=[key.pk], organization=None, actor=user)
    audit_record(actor=user, action="ssh_key.delete", obj=key, before={"fingerprint": key.fingerprint})
    key.delete()
