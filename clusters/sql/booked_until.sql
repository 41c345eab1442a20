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
