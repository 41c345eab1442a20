"""Adding and removing a user's SSH public keys."""

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import SshKey, User
from accounts.services.audit import audit_record
from nodeagent.protocol import InvalidSshKey, parse_ssh_public_key


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
    """Remove one of the user's keys; leases already running keep the copy installed at start."""
    audit_record(actor=user, action="ssh_key.delete", obj=key, before={"fingerprint": key.fingerprint})
    key.delete()
