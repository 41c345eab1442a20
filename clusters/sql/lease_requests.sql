-- Queued requests booked together: the dispatcher's batch of bookings in one round trip.
--
-- This file is the readable source; each migration that changes this function carries a copy of
-- the whole file (tests/clusters/test_sql_functions.py fails when the database runs anything else).

-- clusters_lease_book (booking.sql) for each lease of p_leases in order, with its audit row, its
-- SSH keys, pools, `soon` and quota at the same index, stopping at the first that is refused.
-- Each booking is its own subtransaction: a refused one leaves nothing behind (its lease row is
-- undone) and the ones before it stand. Answers one element per booking tried, as
-- clusters_lease_book answers, the last of them a refusal if one was: {"refusal": "quota_exceeded"
-- | "no_capacity" | "lost_race"}; lost_race is an exclusion violation or a deadlock (another
-- writer took a GPU), which the caller retries alone on fresh data.
CREATE OR REPLACE FUNCTION clusters_leases_book(
    p_leases jsonb[], p_audits jsonb[], p_ssh_key_ids jsonb, p_pools jsonb, p_soon boolean[],
    p_quotas integer[]
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_answers jsonb := '[]';
    v_answer jsonb;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_leases, 1), 0) LOOP
        BEGIN
            v_answer := clusters_lease_book(
                p_leases[i], p_audits[i],
                ARRAY(SELECT jsonb_array_elements_text(p_ssh_key_ids -> (i - 1))::bigint),
                ARRAY(SELECT jsonb_array_elements_text(p_pools -> (i - 1))),
                p_soon[i], p_quotas[i]
            );
            IF v_answer ? 'refusal' THEN
                -- Undo what the refused booking wrote (its lease row): the handler below rolls
                -- this block's subtransaction back.
                RAISE EXCEPTION USING ERRCODE = 'VPR01';
            END IF;
        EXCEPTION
            WHEN SQLSTATE 'VPR01' THEN
                RETURN v_answers || jsonb_build_array(v_answer);
            WHEN exclusion_violation OR deadlock_detected THEN
                RETURN v_answers || jsonb_build_array(jsonb_build_object('refusal', 'lost_race'));
        END;
        v_answers := v_answers || jsonb_build_array(v_answer);
    END LOOP;
    RETURN v_answers;
END
$$;
