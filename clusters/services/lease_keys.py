"""The SSH keys of leases: the booker's by default, a teammate's added to a live lease, and keys
withdrawn (deleted, or their owner removed from the organization) taken off every live lease.

A lease's `ssh_public_keys` is what its nodes are to hold, written from its `ssh_keys` whenever they
change. An active lease whose keys changed is marked `keys_pending`; the run time's next sweep sends
the whole set to its nodes again (`lifecycle.leases_keys_sync`), so a withdrawn key stops working on
every node within one sweep. A scheduled lease sends its keys when it starts.
"""

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from accounts.models import Organization, SshKey, User
from accounts.selectors.ssh_keys import ssh_keys_of, ssh_keys_of_organization
from accounts.services.audit import audit_record
from clusters.choices import LIVE_LEASE_STATES, LeaseState
from clusters.models import Lease
from clusters.services.refusals import InvalidState


def keys_for_booking(*, user: User, ssh_keys: Sequence[SshKey]) -> list[SshKey]:
    """The keys a new lease installs: those chosen, else all the booker's; none at all is refused."""
    chosen = list(ssh_keys) or list(ssh_keys_of(user))
    if not chosen:
        raise ValidationError(
            {
                "ssh_keys": (
                    "Add an SSH public key first: without one nobody could log in to the lease. "
                    f"Add it on the SSH keys page ({reverse('ssh-keys')}) or with POST /api/v1/ssh-keys/."
                )
            }
        )
    return chosen


@transaction.atomic
def lease_ssh_key_add(*, user: User, lease: Lease, key: SshKey) -> Lease:
    """Add a key of one of the organization's members to a scheduled or active lease."""
    lease = _lock(lease.pk)
    if lease.state not in LIVE_LEASE_STATES:
        raise InvalidState(f"Keys can be added to a scheduled or active lease; this one is {lease.state}.")
    if not ssh_keys_of_organization(lease.organization).filter(pk=key.pk).exists():
        raise ValidationError({"ssh_key_id": "Not a key of a member of this lease's organization."})
    if lease.ssh_keys.filter(pk=key.pk).exists():
        raise ValidationError({"ssh_key_id": f"This key ({key.fingerprint}) is already on the lease."})
    lease.ssh_keys.add(key)
    _rewrite_keys(lease)
    audit_record(
        actor=user,
        action="lease.ssh_key_add",
        obj=lease,
        organization=lease.organization,
        after={"fingerprint": key.fingerprint, "owner": key.user.email},
    )
    return lease


def lease_keys_withdraw(*, key_ids: Sequence[int], organization: Organization | None, actor: User) -> None:
    """Take the keys off every live lease (of `organization`, or of all): accounts' KeysWithdrawn hook.

    Runs in the caller's transaction (the key's deletion, the member's removal). The leases are
    locked in id order, after any sweep holding them commits, so the keys a sweep sends are
    rewritten, never lost.
    """
    holding = Lease.objects.filter(state__in=LIVE_LEASE_STATES, ssh_keys__in=key_ids)
    if organization is not None:
        holding = holding.filter(organization=organization)
    leases = (
        Lease.objects.select_for_update(no_key=True)
        .filter(pk__in=holding.values("pk"), state__in=LIVE_LEASE_STATES)
        .select_related("organization")
        .order_by("pk")
    )
    for lease in leases:
        before = list(lease.ssh_public_keys)
        lease.ssh_keys.remove(*key_ids)
        _rewrite_keys(lease)
        audit_record(
            actor=actor,
            action="lease.ssh_key_withdraw",
            obj=lease,
            organization=lease.organization,
            before={"keys": len(before)},
            after={"keys": len(lease.ssh_public_keys)},
        )


def _lock(lease_id: int) -> Lease:
    return Lease.objects.select_for_update(no_key=True).select_related("organization").get(pk=lease_id)


def _rewrite_keys(lease: Lease) -> None:
    """The key lines from the lease's keys; an active lease's nodes get them at the next sweep."""
    lease.ssh_public_keys = list(lease.ssh_keys.order_by("pk").values_list("public_key", flat=True))
    lease.keys_pending = lease.keys_pending or lease.state == LeaseState.ACTIVE
    lease.save(update_fields=["ssh_public_keys", "keys_pending"])
