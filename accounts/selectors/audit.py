"""An organization's audit trail, as its owners read and export it.

It holds every row written for the organization (its leases, members, tokens, money...) and the
access rows of its members (log-ins and failed ones, log-outs, second factors, SSO links) written
while they were members: a person's sign-ins belong to no organization, but an owner must see who
got into their members' accounts. A member's rows from before they joined, and a former member's,
are not shown.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import CharField, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Cast

from accounts.models import AuditEntry, Membership, Organization

ACCESS_ACTIONS = (
    "user.login",
    "user.login_failed",
    "user.logout",
    "user.mfa_failed",
    "mfa.add",
    "mfa.remove",
    "mfa.reset",
    "sso.link",
    "sso.unlink",
)
AUDIT_COLUMNS = ["at", "action", "actor", "object_type", "object_id", "before", "after", "request_id"]
# A cell a spreadsheet would read as a formula is written with a leading apostrophe (OWASP's advice
# on CSV injection): names and emails in the trail are typed by strangers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_CHUNK_ROWS = 500


@dataclass(frozen=True)
class AuditFilter:
    """Rows on or after `since` and on or before `until` (whole UTC days), of `action` (exact, or
    every action under a prefix ending in a dot: `user.`)."""

    since: date | None = None
    until: date | None = None
    action: str = ""


def audit_trail_of(organization: Organization, wanted: AuditFilter) -> QuerySet[AuditEntry]:
    """The organization's audit rows matching `wanted`, newest first."""
    member_then = Membership.objects.annotate(member=Cast("user_id", CharField())).filter(
        organization=organization, member=OuterRef("object_id"), created_at__lte=OuterRef("at")
    )
    access = Q(object_type="User", action__in=ACCESS_ACTIONS) & Exists(member_then)
    rows = AuditEntry.objects.filter(Q(organization=organization) | access)
    if wanted.since:
        rows = rows.filter(at__gte=_midnight(wanted.since))
    if wanted.until:
        rows = rows.filter(at__lt=_midnight(wanted.until + timedelta(days=1)))
    if wanted.action.endswith("."):
        rows = rows.filter(action__startswith=wanted.action)
    elif wanted.action:
        rows = rows.filter(action=wanted.action)
    return rows.select_related("actor").order_by("-at", "-pk")


def audit_rows(entries: Iterable[AuditEntry]) -> Iterator[list[str]]:
    """The rows of AUDIT_COLUMNS, as text."""
    for entry in entries:
        yield [
            entry.at.isoformat(),
            entry.action,
            entry.actor.email if entry.actor else "",
            entry.object_type,
            entry.object_id,
            _json(entry.before),
            _json(entry.after),
            entry.request_id,
        ]


def audit_csv(entries: QuerySet[AuditEntry]) -> Iterator[bytes]:
    """The trail as RFC 4180 CSV, UTF-8, in chunks (read from the database in chunks too)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n")
    writer.writerow(AUDIT_COLUMNS)
    for count, row in enumerate(audit_rows(entries.iterator(chunk_size=CSV_CHUNK_ROWS)), start=1):
        writer.writerow([_defused(cell) for cell in row])
        if count % CSV_CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str) if value else ""


def _defused(cell: str) -> str:
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell
