"""Tokens made before scopes keep working: migration 0006 gives each of them every scope."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("accounts", "0005_email_addresses_of_existing_users")]


@pytest.mark.django_db(transaction=True)
def test_tokens_from_before_scopes_get_every_scope_and_no_expiry(alice, acme) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO accounts_apitoken (public_id, user_id, organization_id, name, prefix,"
                " token_hash, created_at)"
                " VALUES (gen_random_uuid(), %s, %s, 'old', 'vp_old', 'hash-of-old', now())",
                [alice.pk, acme.pk],
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    with connection.cursor() as cursor:
        cursor.execute("SELECT scopes, expires_at FROM accounts_apitoken WHERE name = 'old'")
        assert cursor.fetchall() == [(["read", "book", "billing"], None)]
