"""The audit trail is append-only in PostgreSQL: raw UPDATE and DELETE are refused; only the
SET NULL of a deleted user or organization passes, keeping the row."""

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.models import AuditEntry
from accounts.services.audit import audit_record
from tests.factories import UserFactory


def refused(sql: str, params: list) -> str:
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


@pytest.fixture
def entry(alice, acme) -> AuditEntry:
    return audit_record(actor=alice, action="lease.book", obj=acme, organization=acme, after={"gpus": 8})


@pytest.mark.parametrize(
    "change",
    ["action = 'lease.cancel'", "after = '{}'::jsonb", "at = now()", "actor_id = NULL, action = 'x'"],
)
def test_postgresql_refuses_to_change_an_audit_row(entry, change) -> None:
    assert "append-only" in refused(f"UPDATE accounts_auditentry SET {change} WHERE id = %s", [entry.pk])
    fresh = AuditEntry.objects.get(pk=entry.pk)
    assert (fresh.action, fresh.after, fresh.actor_id) == ("lease.book", {"gpus": 8}, entry.actor_id)


def test_postgresql_refuses_to_move_an_audit_row_to_another_actor(entry, bob) -> None:
    assert "append-only" in refused(
        "UPDATE accounts_auditentry SET actor_id = %s WHERE id = %s", [bob.pk, entry.pk]
    )


def test_postgresql_refuses_to_delete_an_audit_row(entry) -> None:
    assert "append-only" in refused("DELETE FROM accounts_auditentry WHERE id = %s", [entry.pk])
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_deleting_a_person_keeps_their_audit_rows_without_the_link(acme) -> None:
    leaving = UserFactory.create(email="leaving@acme.example")
    kept = audit_record(actor=leaving, action="ssh_key.add", obj=leaving, organization=acme)
    leaving.delete()
    fresh = AuditEntry.objects.get(pk=kept.pk)
    assert (fresh.actor_id, fresh.action, fresh.organization_id) == (None, "ssh_key.add", acme.pk)
