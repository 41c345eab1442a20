"""The balance ledger: every change of an organization's balance is one numbered entry.

`ledger_post` is the one writer of single entries. It locks the organization's account row,
so concurrent top-ups, debits, webhooks and bookings of one organization take turns; it adds
the entry and moves the balance in the caller's transaction, so both commit or neither does.
An entry recording an outside object (a Stripe payment, a lease's commitment) carries its id in
`external_id`, unique per kind: recording it twice changes nothing.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils import timezone

from accounts.models import Organization, User
from billing.models import BillingAccount, LedgerEntry
from billing.services.refusals import InsufficientBalance
from core.money import cents


@dataclass(frozen=True)
class Posting:
    """What to write: an amount of a kind, and what it is about."""

    kind: str
    amount: Decimal
    description: str
    floor: Decimal | None = None
    period_start: datetime | None = None
    covers_until: datetime | None = None
    lease_id: int | None = None
    invoice_id: int | None = None
    credit_grant_id: int | None = None
    external_id: str | None = None


def account_locked(organization: Organization | int) -> BillingAccount:
    """The organization's account row, created if missing, locked until the transaction ends."""
    organization_id = organization if isinstance(organization, int) else organization.pk
    # Most accounts exist: lock first, and insert (a racing insert does nothing) only when missing.
    account = BillingAccount.objects.select_for_update().filter(pk=organization_id).first()
    if account is not None:
        return account
    BillingAccount.objects.bulk_create(
        [BillingAccount(organization_id=organization_id)], ignore_conflicts=True
    )
    return BillingAccount.objects.select_for_update().get(pk=organization_id)


@transaction.atomic
def ledger_post(
    *,
    organization: Organization | int,
    posting: Posting,
    actor: User | None = None,
    at: datetime | None = None,
) -> LedgerEntry | None:
    """Add one entry and move the balance; None when the entry's external id is already recorded.

    Refuses (InsufficientBalance) an entry that would leave the balance below its floor.
    """
    return ledger_post_here(organization=organization, posting=posting, actor=actor, at=at)


# The entry and the balance it leaves, in one statement: the account row is already locked, so the
# sequence and balance are known; a recorded external id (ON CONFLICT) writes neither.
POST_SQL = """
WITH entry AS (
    INSERT INTO billing_ledgerentry (organization_id, sequence, kind, amount, balance_after, floor, at,
        period_start, covers_until, description, lease_id, invoice_id, credit_grant_id, external_id,
        actor_id)
    VALUES (%(organization_id)s, %(sequence)s, %(kind)s, %(amount)s, %(balance_after)s, %(floor)s, %(at)s,
        %(period_start)s, %(covers_until)s, %(description)s, %(lease_id)s, %(invoice_id)s,
        %(credit_grant_id)s, %(external_id)s, %(actor_id)s)
    ON CONFLICT (kind, external_id) WHERE external_id IS NOT NULL DO NOTHING
    RETURNING id
)
UPDATE billing_billingaccount SET balance = %(balance_after)s, entries = %(sequence)s
FROM entry WHERE organization_id = %(organization_id)s
RETURNING entry.id
"""


def ledger_post_here(
    *,
    organization: Organization | int,
    posting: Posting,
    actor: User | None = None,
    at: datetime | None = None,
) -> LedgerEntry | None:
    """`ledger_post` in the caller's atomic block, with no savepoint of its own: for a writer that
    rolls back whole when it refuses (booking's commitment). Two statements: the lock, the write."""
    if not transaction.get_connection().in_atomic_block:
        # Outside one, its lock would end with the statement and the write could race (not an
        # assert: `python -O` drops those).
        raise transaction.TransactionManagementError("ledger_post_here must run inside an atomic block")
    account = account_locked(organization)
    amount = cents(Decimal(posting.amount))
    balance = account.balance + amount
    if posting.floor is not None and balance < posting.floor:
        if _recorded(posting):
            return None
        raise InsufficientBalance(
            f"This needs {-amount} USD and the balance is {account.balance} USD: "
            f"top up at least {posting.floor - balance} USD first.",
            balance=str(account.balance),
            needed=str(-amount),
        )
    entry = LedgerEntry(
        organization_id=account.pk,
        sequence=account.entries + 1,
        kind=posting.kind,
        amount=amount,
        balance_after=balance,
        floor=posting.floor,
        at=at or timezone.now(),
        period_start=posting.period_start,
        covers_until=posting.covers_until,
        description=posting.description[:300],
        lease_id=posting.lease_id,
        invoice_id=posting.invoice_id,
        credit_grant_id=posting.credit_grant_id,
        external_id=posting.external_id,
        actor=actor,
    )
    with connection.cursor() as cursor:
        cursor.execute(POST_SQL, {field: getattr(entry, field) for field in POSTED_FIELDS})
        row = cursor.fetchone()
    if row is None:
        return None
    entry.pk, entry._state.adding, entry._state.db = row[0], False, DEFAULT_DB_ALIAS
    return entry


def _recorded(posting: Posting) -> bool:
    """Recorded already: a repeat changes nothing, even one its floor would now refuse."""
    return bool(posting.external_id) and (
        LedgerEntry.objects.filter(kind=posting.kind, external_id=posting.external_id).exists()
    )


POSTED_FIELDS = (
    "organization_id", "sequence", "kind", "amount", "balance_after", "floor", "at", "period_start",
    "covers_until", "description", "lease_id", "invoice_id", "credit_grant_id", "external_id", "actor_id",
)  # fmt: skip
