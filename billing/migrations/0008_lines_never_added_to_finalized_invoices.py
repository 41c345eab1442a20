"""No line may be added to a finalized invoice, nor moved onto one: the line trigger now also
checks INSERTs and the invoice a line is moved to (0006 checked only UPDATE and DELETE of a line
against the invoice it left).

A copy of billing/sql/frozen_invoices.sql as it was when this migration was written
(tests/clusters/test_sql_functions.py checks that the latest copy is what the file says); going
back runs 0006's copy again.
"""

import importlib

from django.db import migrations

FROZEN_INVOICES = r"""
-- A finalized invoice never changes, whatever code path tries (the admin, a shell, a bug): PostgreSQL
-- refuses it. Once an invoice leaves draft, only its collection may move on: the status (never back
-- to draft), when it was paid or voided, the void's note and Stripe's ids and hosted page. Its
-- number, organization, period, amounts, dates of issue and due, and what it corrects stay as
-- issued, and it cannot be deleted. Its lines cannot be added to, changed or deleted either (a
-- correction is a credit note: a new invoice with lines of its own).
CREATE OR REPLACE FUNCTION billing_invoice_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'draft' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.status <> 'draft'
       AND (NEW.id, NEW.public_id, NEW.organization_id, NEW.kind, NEW.number, NEW.period_start,
            NEW.period_end, NEW.currency, NEW.subtotal, NEW.credits, NEW.total, NEW.corrects_id,
            NEW.created_at, NEW.issued_at, NEW.due_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.public_id, OLD.organization_id, OLD.kind, OLD.number, OLD.period_start,
            OLD.period_end, OLD.currency, OLD.subtotal, OLD.credits, OLD.total, OLD.corrects_id,
            OLD.created_at, OLD.issued_at, OLD.due_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'invoice % is finalized: it cannot be % (issue a credit note instead)',
        OLD.number, CASE WHEN TG_OP = 'DELETE' THEN 'deleted' ELSE 'changed' END
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE OR REPLACE FUNCTION billing_invoice_line_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_number text;
BEGIN
    -- The invoice a line leaves and the one it joins: an INSERT or an UPDATE that moves a line onto
    -- a finalized invoice would change its amounts as surely as editing one of its own lines.
    SELECT status, number INTO v_status, v_number FROM billing_invoice
     WHERE status <> 'draft'
       AND id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.invoice_id END,
                  CASE WHEN TG_OP <> 'DELETE' THEN NEW.invoice_id END)
     LIMIT 1;
    IF v_status IS NULL THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'invoice % is finalized: its lines cannot be % (issue a credit note instead)',
        v_number, CASE TG_OP WHEN 'DELETE' THEN 'deleted' WHEN 'INSERT' THEN 'added to' ELSE 'changed' END
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE OR REPLACE TRIGGER invoice_frozen BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_frozen();
CREATE OR REPLACE TRIGGER invoice_line_frozen BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_line_frozen();
"""

PREVIOUS = importlib.import_module("billing.migrations.0006_finalized_invoices_frozen").FROZEN_INVOICES


class Migration(migrations.Migration):
    dependencies = [("billing", "0007_usage_rows_lease_key_unchecked_brin_on_hour")]

    operations = [migrations.RunSQL(FROZEN_INVOICES, PREVIOUS)]
