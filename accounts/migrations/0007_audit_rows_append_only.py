"""Audit rows are refused UPDATE and DELETE by PostgreSQL (but for the SET NULL of a deleted user or
organization).

A copy of accounts/sql/audit_append_only.sql as it was when this migration was written
(tests/clusters/test_sql_functions.py checks that the latest copy is what the file says).
"""

from django.db import migrations

AUDIT_APPEND_ONLY = r"""
-- The audit trail is append-only, whatever code path tries: PostgreSQL refuses to change or delete
-- a row. The one change allowed is the one the foreign keys make themselves: when a user or an
-- organization is deleted, its rows keep everything but the link (actor_id or organization_id set
-- to NULL, Django's SET_NULL), so a person can be erased while what was done stays recorded.
CREATE OR REPLACE FUNCTION accounts_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.actor_id IS NULL OR NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id)
       AND (NEW.organization_id IS NULL OR NEW.organization_id IS NOT DISTINCT FROM OLD.organization_id)
       AND (NEW.id, NEW.at, NEW.action, NEW.object_type, NEW.object_id, NEW.before, NEW.after,
            NEW.request_id)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.at, OLD.action, OLD.object_type, OLD.object_id, OLD.before, OLD.after,
            OLD.request_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit rows are append-only: row % cannot be %', OLD.id,
        CASE WHEN TG_OP = 'DELETE' THEN 'deleted' ELSE 'changed' END
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON accounts_auditentry
    FOR EACH ROW EXECUTE FUNCTION accounts_audit_append_only();
"""

REVERSE = """
DROP TRIGGER audit_append_only ON accounts_auditentry;
DROP FUNCTION accounts_audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_api_token_scopes_and_expiry")]

    operations = [migrations.RunSQL(AUDIT_APPEND_ONLY, REVERSE)]
