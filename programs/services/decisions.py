"""What every request staff decide on goes through: an owner asks, a staff admin takes the pending
request under its row lock and decides once, and the asker is emailed after the commit.

The early-stage program (early_stage.py) and quota requests (quota_requests.py) differ only in what
they ask for and what an approval grants.
"""

from typing import TypeVar

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Membership, Organization, User
from accounts.selectors.staff import is_staff_admin
from programs.choices import ApplicationStatus
from programs.models import StaffDecision

Decision = TypeVar("Decision", bound=StaffDecision)


def require_owner(actor: User, organization: Organization, refusal: str) -> None:
    if not Membership.objects.filter(user=actor, organization=organization, role=Role.OWNER).exists():
        raise PermissionDenied(refusal)


def require_staff_admin(actor: User, what: str) -> None:
    if not is_staff_admin(actor):
        raise PermissionDenied(f"Only a staff admin may decide on {what}.")


def pending_locked(decision: Decision, noun: str, asker: str) -> Decision:
    """The request re-read under its row lock, with its organization and `asker` (the user field);
    refused when another admin decided it first."""
    locked = type(decision)._default_manager.select_for_update().select_related("organization", asker)
    decision = locked.get(pk=decision.pk)
    if decision.status != ApplicationStatus.PENDING:
        raise ValidationError(f"This {noun} was already {decision.status}.")
    return decision


def decide(
    decision: StaffDecision,
    actor: User,
    status: str,
    note: str,
    quota: int | None,
    also: tuple[str, ...] = (),
) -> None:
    """Record the decision; `also` names the request's own fields the caller set with it."""
    decision.status, decision.decided_by, decision.decided_at = status, actor, timezone.now()
    decision.decision_note, decision.granted_gpu_quota = note, quota
    fields = ["status", "decided_by", "decided_at", "decision_note", "granted_gpu_quota", *also]
    decision.save(update_fields=fields)


def email_after_commit(subject: str, body: str, recipients: list[str]) -> None:
    """Send once the transaction commits, so a rolled-back decision tells nobody anything."""
    transaction.on_commit(lambda: send_mail(subject, body, None, recipients))
