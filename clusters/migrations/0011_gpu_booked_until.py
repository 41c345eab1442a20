"""When each GPU's last live booking ends, kept by triggers; placement packs reserved leases with it.

Copies of clusters/sql/booked_until.sql and clusters/sql/booking.sql as they were when this
migration was written (tests/clusters/test_sql_functions.py checks that the latest copies are what
the files say). clusters_free_nodes gains a column, so it is dropped before the new one is made.
"""

import django.db.models.deletion
from importlib import import_module

from django.db import migrations, models

BACKFILL = """
INSERT INTO clusters_gpubookeduntil (gpu_id, node_id, region_id, booked_until)
SELECT g.id, g.node_id, c.region_id,
       coalesce((SELECT max(coalesce(upper(a.period), 'infinity')) FROM clusters_allocation a
                 WHERE a.gpu_id = g.id AND a.is_live), '-infinity')
FROM clusters_gpu g
JOIN clusters_node n ON n.id = g.node_id
JOIN clusters_cluster c ON c.id = n.cluster_id;
"""

BOOKED_UNTIL = r"""
-- When each GPU's last live booking ends (clusters_gpubookeduntil.booked_until: 'infinity' while a
-- lease with no end holds it, '-infinity' when it has no live allocation). A GPU whose bookings
-- are all over carries nothing from now on: on-demand can take it, and placement keeps reserved
-- leases off it when it can (clusters_free_nodes' `unbooked`). Without this row, telling such a
-- GPU apart would scan every future allocation of the region on every booking.
--
-- Triggers keep it right whoever writes allocations or GPUs (booking, the sweepers, tests, the
-- benchmarks' COPY); code reads it and never writes it. Each trigger locks the rows it rewrites in
-- GPU order first, so two writers of one GPU's allocations never wait on each other in a circle.

-- Recompute the rows of these GPUs from their live allocations.
CREATE OR REPLACE FUNCTION clusters_gpus_rebook(p_gpus bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_gpus IS NULL THEN
        RETURN;
    END IF;
    PERFORM 1 FROM clusters_gpubookeduntil b WHERE b.gpu_id = ANY(p_gpus) ORDER BY b.gpu_id FOR NO KEY UPDATE;
    UPDATE clusters_gpubookeduntil b
    SET booked_until = coalesce(
        (SELECT max(coalesce(upper(a.period), 'infinity')) FROM clusters_allocation a
         WHERE a.gpu_id = b.gpu_id AND a.is_live),
        '-infinity')
    WHERE b.gpu_id = ANY(p_gpus);
END
$$;

CREATE OR REPLACE FUNCTION clusters_allocations_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM clusters_gpus_rebook(ARRAY(SELECT DISTINCT n.gpu_id FROM new_rows n WHERE n.is_live));
    RETURN NULL;
END
$$;

-- Only a change of GPU, liveness or end moves booked_until (a late start moves the lower bound).
CREATE OR REPLACE FUNCTION clusters_allocations_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM clusters_gpus_rebook(ARRAY(
        SELECT o.gpu_id FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE (o.gpu_id, o.is_live, upper(o.period)) IS DISTINCT FROM (n.gpu_id, n.is_live, upper(n.period))
        UNION
        SELECT n.gpu_id FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE (o.gpu_id, o.is_live, upper(o.period)) IS DISTINCT FROM (n.gpu_id, n.is_live, upper(n.period))
    ));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION clusters_allocations_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM clusters_gpus_rebook(ARRAY(SELECT DISTINCT o.gpu_id FROM old_rows o WHERE o.is_live));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION clusters_gpus_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO clusters_gpubookeduntil (gpu_id, node_id, region_id, booked_until)
    SELECT g.id, g.node_id, c.region_id, '-infinity'
    FROM new_rows g
    JOIN clusters_node n ON n.id = g.node_id
    JOIN clusters_cluster c ON c.id = n.cluster_id;
    RETURN NULL;
END
$$;

-- A node that moves to another cluster (or a cluster to another region) takes its GPUs' rows along.
CREATE OR REPLACE FUNCTION clusters_node_moved_booked_until() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE clusters_gpubookeduntil b SET region_id = c.region_id
    FROM clusters_cluster c WHERE c.id = NEW.cluster_id AND b.node_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION clusters_cluster_moved_booked_until() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE clusters_gpubookeduntil b SET region_id = NEW.region_id
    FROM clusters_node n WHERE n.cluster_id = NEW.id AND b.node_id = n.id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER allocations_inserted_booked_until AFTER INSERT ON clusters_allocation
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION clusters_allocations_inserted();
CREATE OR REPLACE TRIGGER allocations_updated_booked_until AFTER UPDATE ON clusters_allocation
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
EXECUTE FUNCTION clusters_allocations_updated();
CREATE OR REPLACE TRIGGER allocations_deleted_booked_until AFTER DELETE ON clusters_allocation
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION clusters_allocations_deleted();
CREATE OR REPLACE TRIGGER gpus_inserted_booked_until AFTER INSERT ON clusters_gpu
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION clusters_gpus_inserted();
CREATE OR REPLACE TRIGGER node_moved_booked_until AFTER UPDATE OF cluster_id ON clusters_node
FOR EACH ROW WHEN (OLD.cluster_id IS DISTINCT FROM NEW.cluster_id)
EXECUTE FUNCTION clusters_node_moved_booked_until();
CREATE OR REPLACE TRIGGER cluster_moved_booked_until AFTER UPDATE OF region_id ON clusters_cluster
FOR EACH ROW WHEN (OLD.region_id IS DISTINCT FROM NEW.region_id)
EXECUTE FUNCTION clusters_cluster_moved_booked_until();
"""

DROP_BOOKED_UNTIL = """
DROP TRIGGER cluster_moved_booked_until ON clusters_cluster;
DROP TRIGGER node_moved_booked_until ON clusters_node;
DROP TRIGGER gpus_inserted_booked_until ON clusters_gpu;
DROP TRIGGER allocations_deleted_booked_until ON clusters_allocation;
DROP TRIGGER allocations_updated_booked_until ON clusters_allocation;
DROP TRIGGER allocations_inserted_booked_until ON clusters_allocation;
DROP FUNCTION clusters_cluster_moved_booked_until();
DROP FUNCTION clusters_node_moved_booked_until();
DROP FUNCTION clusters_gpus_inserted();
DROP FUNCTION clusters_allocations_deleted();
DROP FUNCTION clusters_allocations_updated();
DROP FUNCTION clusters_allocations_inserted();
DROP FUNCTION clusters_gpus_rebook(bigint[]);
"""

DROP_FREE_NODES = "DROP FUNCTION clusters_free_nodes(bigint, timestamptz, timestamptz, text[], boolean);"

BOOKING = DROP_FREE_NODES + r"""
-- Booking in the database: what is free, how much an organization holds, and the booking itself.
--
-- This file is the readable source; each migration that changes these functions carries a copy
-- of the whole file (tests/clusters/test_sql_functions.py fails when the database runs anything
-- else). Plain SQL functions are inlined into the queries that call them, so their parameters
-- reach the indexes as if the query had been written out; PL/pgSQL functions keep the plans of
-- their statements for the life of a connection, so a booking is planned once per connection,
-- not once per request.

-- Free GPUs per node of a region for the window [p_start, p_end) (p_end NULL: open-ended), on
-- available nodes of the pools p_pools (in order of preference: pool_rank 1 is the first).
-- A GPU is busy when a live allocation overlaps the window, when it is not healthy, or, for a
-- window starting soon (p_soon), while it waits for cleanup. `unbooked` counts the free GPUs that
-- carry no booking at all from now on (clusters_gpubookeduntil): what on-demand can take, which
-- placement keeps for it when it can. cluster_whole counts the wholly free nodes of the node's
-- cluster and pool. Placement, availability and offerings read this.
-- `busy` is an index-only scan of one region's live allocations overlapping the window (index
-- allocation_region_period) plus the few unplaceable GPUs (index gpu_unplaceable); UNION counts
-- a GPU once however many allocations it has in the window. `unbooked` reads the region's GPUs
-- booked until now at the latest (index gpu_booked_until_region): few on a busy fleet.
CREATE OR REPLACE FUNCTION clusters_free_nodes(
    p_region bigint, p_start timestamptz, p_end timestamptz, p_pools text[], p_soon boolean
) RETURNS TABLE (
    node_id bigint, cluster_id bigint, pool text, hostname text, pool_rank integer, free integer,
    unbooked integer, cluster_whole integer
) LANGUAGE sql STABLE AS $$
WITH unplaceable AS (
    SELECT g.node_id, g.id AS gpu_id
    FROM clusters_gpu g
    WHERE (g.health <> 'healthy' OR g.needs_cleanup) AND (g.health <> 'healthy' OR p_soon)
),
busy AS (
    SELECT a.node_id, a.gpu_id
    FROM clusters_allocation a
    WHERE a.region_id = p_region AND a.is_live AND a.period && tstzrange(p_start, p_end, '[)')
  UNION
    SELECT u.node_id, u.gpu_id FROM unplaceable u
),
busy_per_node AS (
    SELECT b.node_id, count(*)::integer AS busy FROM busy b GROUP BY b.node_id
),
-- Booked until the window's start (a reserved start may be a few seconds before now) and now:
-- such a GPU is free in the window, so `unbooked` never exceeds `free`.
unbooked_per_node AS (
    SELECT b.node_id, count(*)::integer AS unbooked
    FROM clusters_gpubookeduntil b
    WHERE b.region_id = p_region AND b.booked_until <= least(now(), p_start)
      AND NOT EXISTS (SELECT 1 FROM unplaceable u WHERE u.gpu_id = b.gpu_id)
    GROUP BY b.node_id
),
free AS (
    SELECT n.id AS node_id, n.cluster_id, n.pool::text AS pool, n.hostname::text AS hostname,
           array_position(p_pools, n.pool::text) AS pool_rank,
           8 - coalesce(b.busy, 0) AS free,
           coalesce(u.unbooked, 0) AS unbooked
    FROM clusters_node n
    JOIN clusters_cluster c ON c.id = n.cluster_id
    LEFT JOIN busy_per_node b ON b.node_id = n.id
    LEFT JOIN unbooked_per_node u ON u.node_id = n.id
    WHERE c.region_id = p_region AND n.state = 'available' AND n.pool = ANY(p_pools)
)
SELECT f.node_id, f.cluster_id, f.pool, f.hostname, f.pool_rank, f.free, f.unbooked,
       (sum((f.free = 8)::integer) OVER (PARTITION BY f.cluster_id, f.pool))::integer AS cluster_whole
FROM free f
$$;

-- The most GPUs the organization's live leases hold at any instant of [p_start, p_end), leaving
-- out lease p_exclude (the lease being extended). At one instant, ends count before starts:
-- periods are [) ranges, so a lease ending when another starts never holds GPUs with it.
CREATE OR REPLACE FUNCTION clusters_gpus_held_at_peak(
    p_organization bigint, p_start timestamptz, p_end timestamptz, p_exclude bigint
) RETURNS integer LANGUAGE sql STABLE AS $$
WITH leases AS (
    SELECT l.start, l."end", l.gpus
    FROM clusters_lease l
    WHERE l.organization_id = p_organization AND l.state IN ('scheduled', 'active')
      AND (p_end IS NULL OR l.start < p_end) AND (l."end" IS NULL OR l."end" > p_start)
      AND l.id IS DISTINCT FROM p_exclude
),
events AS (
    SELECT greatest(l.start, p_start) AS at, l.gpus AS delta FROM leases l
  UNION ALL
    SELECT l."end", -l.gpus FROM leases l WHERE l."end" IS NOT NULL
)
SELECT coalesce(max(held), 0)::integer
FROM (SELECT sum(e.delta) OVER (ORDER BY e.at, e.delta ROWS UNBOUNDED PRECEDING) AS held FROM events e) s
$$;

-- Allocate p_gpus free GPUs of the locked nodes p_nodes (in that order of preference; on a node,
-- GPUs that carry other bookings before unbooked ones, then by index) to the lease over the
-- window, or nothing at all if fewer are free. The free GPUs
-- are read afresh (a new statement sees what an earlier holder of the node locks committed).
-- Answers [[allocation, gpu, node, hostname, index], ...] by hostname and index, or NULL.
CREATE OR REPLACE FUNCTION clusters_allocate(
    p_lease bigint, p_nodes bigint[], p_gpus integer, p_start timestamptz, p_end timestamptz,
    p_soon boolean
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_placed jsonb;
BEGIN
    WITH free AS (
        SELECT g.id, g.node_id, g.index, n.hostname
        FROM clusters_gpu g
        JOIN clusters_node n ON n.id = g.node_id
        JOIN clusters_gpubookeduntil b ON b.gpu_id = g.id
        WHERE g.node_id = ANY(p_nodes) AND g.health = 'healthy' AND NOT (g.needs_cleanup AND p_soon)
          AND NOT EXISTS (
              SELECT 1 FROM clusters_allocation a
              WHERE a.gpu_id = g.id AND a.is_live AND a.period && tstzrange(p_start, p_end, '[)')
          )
        ORDER BY array_position(p_nodes, g.node_id), b.booked_until <= least(now(), p_start), g.index
        LIMIT p_gpus
    ),
    written AS (
        INSERT INTO clusters_allocation (lease_id, gpu_id, node_id, period, is_live)
        SELECT p_lease, f.id, f.node_id, tstzrange(p_start, p_end, '[)'), true
        FROM free f
        WHERE (SELECT count(*) FROM free) = p_gpus
        RETURNING clusters_allocation.id, clusters_allocation.gpu_id
    )
    SELECT jsonb_agg(jsonb_build_array(w.id, f.id, f.node_id, f.hostname, f.index) ORDER BY f.hostname, f.index)
    INTO v_placed
    FROM written w JOIN free f ON f.id = w.gpu_id;
    RETURN v_placed;
END
$$;

-- A lease of 1-8 GPUs on one node, in the first pool that fits: first the node where it takes the
-- fewest unbooked GPUs (a reserved lease goes onto GPUs that already carry other bookings, and
-- leaves GPUs free from now on to on-demand; an on-demand lease takes only unbooked GPUs, so this
-- is the same everywhere for it), then best fit: the fewest free GPUs that still fit (partly used
-- nodes fill first), in the cluster with the fewest wholly free nodes (clusters with room for
-- large leases stay whole), then by hostname.
-- The chosen node is locked FOR NO KEY UPDATE SKIP LOCKED, so concurrent bookings spread over
-- different nodes instead of all colliding on the best one; only when every candidate is locked
-- does a booking wait for the best one. Only the 64 best candidates are joined back to their node
-- rows (by primary key, far cheaper than joining the whole region). A node found taken after its
-- lock (another booking committed meanwhile) is skipped, at most 8 times.
CREATE OR REPLACE FUNCTION clusters_place_on_one_node(
    p_lease bigint, p_region bigint, p_start timestamptz, p_end timestamptz, p_gpus integer,
    p_pools text[], p_soon boolean
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_stale bigint[] := '{}';
    v_node bigint;
    v_placed jsonb;
BEGIN
    FOR attempt IN 1..8 LOOP
        SELECT n.id INTO v_node
        FROM (
            SELECT r.node_id, r.pool_rank, greatest(0, p_gpus - (r.free - r.unbooked)) AS unbooked_taken,
                   r.free, r.cluster_whole, r.hostname
            FROM clusters_free_nodes(p_region, p_start, p_end, p_pools, p_soon) r
            WHERE r.free >= p_gpus AND r.node_id <> ALL(v_stale)
            ORDER BY r.pool_rank, unbooked_taken, r.free, r.cluster_whole, r.hostname
            LIMIT 64
        ) r
        JOIN clusters_node n ON n.id = r.node_id
        WHERE n.state = 'available'
        ORDER BY r.pool_rank, r.unbooked_taken, r.free, r.cluster_whole, r.hostname
        LIMIT 1
        FOR NO KEY UPDATE OF n SKIP LOCKED;
        IF NOT FOUND THEN
            SELECT n.id INTO v_node
            FROM (
                SELECT r.node_id, r.pool_rank, greatest(0, p_gpus - (r.free - r.unbooked)) AS unbooked_taken,
                       r.free, r.cluster_whole, r.hostname
                FROM clusters_free_nodes(p_region, p_start, p_end, p_pools, p_soon) r
                WHERE r.free >= p_gpus AND r.node_id <> ALL(v_stale)
                ORDER BY r.pool_rank, unbooked_taken, r.free, r.cluster_whole, r.hostname
                LIMIT 64
            ) r
            JOIN clusters_node n ON n.id = r.node_id
            WHERE n.state = 'available'
            ORDER BY r.pool_rank, r.unbooked_taken, r.free, r.cluster_whole, r.hostname
            LIMIT 1
            FOR NO KEY UPDATE OF n;
            IF NOT FOUND THEN
                RETURN NULL;
            END IF;
        END IF;
        v_placed := clusters_allocate(p_lease, ARRAY[v_node], p_gpus, p_start, p_end, p_soon);
        IF v_placed IS NOT NULL THEN
            RETURN v_placed;
        END IF;
        v_stale := v_stale || v_node;
    END LOOP;
    RETURN NULL;
END
$$;

-- A lease above 8 GPUs: p_nodes wholly free nodes of one cluster (one fabric), in the first pool
-- that fits: first the cluster where its best nodes hold the fewest unbooked GPUs (as above), then
-- the cluster with the fewest wholly free nodes that still fits it; in the cluster, the nodes with
-- the fewest unbooked GPUs, then by hostname. First the clusters whose nodes nobody is booking
-- right now (SKIP LOCKED), then it waits for the best one (its nodes locked in hostname order).
CREATE OR REPLACE FUNCTION clusters_place_on_whole_nodes(
    p_lease bigint, p_region bigint, p_start timestamptz, p_end timestamptz, p_nodes integer,
    p_pools text[], p_soon boolean
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
    v_best bigint[];
    v_locked bigint[];
    v_placed jsonb;
BEGIN
    FOR v_ids IN
        SELECT array_agg(r.node_id ORDER BY r.unbooked, r.hostname)
        FROM clusters_free_nodes(p_region, p_start, p_end, p_pools, p_soon) r
        JOIN clusters_cluster c ON c.id = r.cluster_id
        WHERE r.free = 8
        GROUP BY r.cluster_id, c.name, r.pool_rank
        HAVING count(*) >= p_nodes
        ORDER BY r.pool_rank,
                 (SELECT sum(u) FROM unnest((array_agg(r.unbooked ORDER BY r.unbooked))[1:p_nodes]) AS u),
                 count(*), c.name
    LOOP
        v_best := coalesce(v_best, v_ids[1:p_nodes]);
        v_locked := ARRAY(
            SELECT n.id FROM clusters_node n
            WHERE n.id = ANY(v_ids) AND n.state = 'available'
            ORDER BY array_position(v_ids, n.id) LIMIT p_nodes
            FOR NO KEY UPDATE SKIP LOCKED
        );
        IF cardinality(v_locked) = p_nodes THEN
            v_placed := clusters_allocate(p_lease, v_locked, p_nodes * 8, p_start, p_end, p_soon);
            IF v_placed IS NOT NULL THEN
                RETURN v_placed;
            END IF;
        END IF;
    END LOOP;
    IF v_best IS NULL THEN
        RETURN NULL;
    END IF;
    v_locked := ARRAY(
        SELECT n.id FROM clusters_node n
        WHERE n.id = ANY(v_best) AND n.state = 'available'
        ORDER BY n.hostname
        FOR NO KEY UPDATE
    );
    IF cardinality(v_locked) < p_nodes THEN
        RETURN NULL;
    END IF;
    RETURN clusters_allocate(p_lease, v_best, p_nodes * 8, p_start, p_end, p_soon);
END
$$;

-- The booking, in one round trip, under the organization's row lock (taken by the caller, which
-- checks its own rules in between): the quota at the busiest instant of the window, the lease
-- row as Django built it (p_lease, every column but id), placement and its allocations, the SSH
-- keys, and the audit row (p_audit, every column but id). Answers {"lease": id, "placed":
-- [[allocation, gpu, node, hostname, index], ...]}, or {"refusal": "quota_exceeded", "gpus_held"}
-- or {"refusal": "no_capacity"}, after which the caller rolls back: the lease row goes with it.
-- A writer that ignored the node locks makes the exclusion constraint fire (23P01), and the
-- caller retries on fresh data.
CREATE OR REPLACE FUNCTION clusters_lease_book(
    p_lease jsonb, p_audit jsonb, p_ssh_key_ids bigint[], p_pools text[], p_soon boolean,
    p_quota integer
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_lease clusters_lease := jsonb_populate_record(NULL::clusters_lease, p_lease);
    v_audit accounts_auditentry := jsonb_populate_record(NULL::accounts_auditentry, p_audit);
    v_held integer;
    v_placed jsonb;
BEGIN
    v_held := clusters_gpus_held_at_peak(v_lease.organization_id, v_lease.start, v_lease."end", NULL);
    IF v_held + v_lease.gpus > p_quota THEN
        RETURN jsonb_build_object('refusal', 'quota_exceeded', 'gpus_held', v_held);
    END IF;
    v_lease.id := nextval(pg_get_serial_sequence('clusters_lease', 'id'));
    INSERT INTO clusters_lease SELECT (v_lease).*;
    IF v_lease.gpus <= 8 THEN
        v_placed := clusters_place_on_one_node(
            v_lease.id, v_lease.region_id, v_lease.start, v_lease."end", v_lease.gpus, p_pools, p_soon
        );
    ELSE
        v_placed := clusters_place_on_whole_nodes(
            v_lease.id, v_lease.region_id, v_lease.start, v_lease."end", v_lease.gpus / 8, p_pools, p_soon
        );
    END IF;
    IF v_placed IS NULL THEN
        RETURN jsonb_build_object('refusal', 'no_capacity');
    END IF;
    INSERT INTO clusters_lease_ssh_keys (lease_id, sshkey_id)
    SELECT v_lease.id, k FROM unnest(p_ssh_key_ids) AS k;
    v_audit.id := nextval(pg_get_serial_sequence('accounts_auditentry', 'id'));
    INSERT INTO accounts_auditentry SELECT (v_audit).*;
    RETURN jsonb_build_object('lease', v_lease.id, 'placed', v_placed);
END
$$;
"""

# Going back: the functions as the previous copy made them.
PREVIOUS_BOOKING = DROP_FREE_NODES + import_module("clusters.migrations.0009_booking_in_one_round_trip").SQL


class Migration(migrations.Migration):

    dependencies = [
        ('clusters', '0010_demand_records'),
    ]

    operations = [
        migrations.CreateModel(
            name='GpuBookedUntil',
            fields=[
                ('gpu', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='booked_until', serialize=False, to='clusters.gpu')),
                ('booked_until', models.DateTimeField()),
                ('node', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='clusters.node')),
                ('region', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='clusters.region')),
            ],
            options={
                'verbose_name': 'GPU booked until',
                'verbose_name_plural': 'GPUs booked until',
                'indexes': [models.Index(fields=['region', 'booked_until'], include=('node',), name='gpu_booked_until_region')],
            },
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunSQL(BOOKED_UNTIL, DROP_BOOKED_UNTIL),
        migrations.RunSQL(BOOKING, PREVIOUS_BOOKING),
    ]
