"""The audit trail every service writes to."""

from typing import Any

from django.db import transaction

from accounts.models import AuditEntry, Organization, User
from core.request_id import current_request_id


def audit_record(
    *,
    actor: User | None,
    action: str,
    obj: Any,
    organization: Organization | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit row for `action` on `obj` (call inside the service's transaction).

    The row carries the id of the request or Celery task being served, as its log lines do.
    """
    entry = audit_entry(
        actor=actor, action=action, obj=obj, organization=organization, before=before, after=after
    )
    entry.save()
    return entry


def audit_entry(
    *,
    actor: User | None,
    action: str,
    obj: Any,
    organization: Organization | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """The audit row `audit_record` writes, not yet saved: for a service that inserts it in SQL."""
    object_id = getattr(obj, "public_id", None) or getattr(obj, "pk", "")
    return AuditEntry(
        actor=actor if actor is not None and actor.is_authenticated else None,
        organization=organization,
        action=action,
        # __class__, not type(): a lazily loaded object (request.user) reports its real class.
        object_type=obj.__class__.__name__,
        object_id=str(object_id),
        before=before or {},
        after=after or {},
        request_id=current_request_id() or "",
    )


@transaction.atomic
def admin_change_record(*, actor: User, action: str, obj: Any, change: str) -> AuditEntry:
    """A change made in the Django admin (`admin.add`, `admin.change`, `admin.delete`), with the admin's
    own description of it; under the changed organization, or the organization the object belongs to."""
    organization = obj if isinstance(obj, Organization) else getattr(obj, "organization", None)
    return audit_record(
        actor=actor,
        action=action,
        obj=obj,
        organization=organization if isinstance(organization, Organization) else None,
        after={"change": change, "object": str(obj)},
    )
