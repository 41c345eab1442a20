"""Allocation.region: filled in for existing rows, then kept right by triggers.

Placement and availability scan one region's live allocations through the GiST index on
(region, period). A wrong or missing region would hide a busy GPU from them (the exclusion
constraint would still refuse the overlap, but booking would retry and could answer "no
capacity" with room left), so the database derives the column from the node on every insert,
and rewrites it when a node moves to another cluster or a cluster to another region.
"""

from django.db import migrations

BACKFILL = """
UPDATE clusters_allocation a SET region_id = c.region_id
FROM clusters_node n JOIN clusters_cluster c ON c.id = n.cluster_id
WHERE n.id = a.node_id;
"""

TRIGGERS = """
CREATE FUNCTION clusters_allocation_set_region() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.region_id INTO NEW.region_id
    FROM clusters_node n JOIN clusters_cluster c ON c.id = n.cluster_id
    WHERE n.id = NEW.node_id;
    RETURN NEW;
END $$;
CREATE TRIGGER allocation_region BEFORE INSERT OR UPDATE OF node_id, region_id ON clusters_allocation
FOR EACH ROW EXECUTE FUNCTION clusters_allocation_set_region();

CREATE FUNCTION clusters_node_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE clusters_allocation a SET region_id = c.region_id
    FROM clusters_cluster c WHERE c.id = NEW.cluster_id AND a.node_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER node_moved_allocation_region AFTER UPDATE OF cluster_id ON clusters_node
FOR EACH ROW WHEN (OLD.cluster_id IS DISTINCT FROM NEW.cluster_id) EXECUTE FUNCTION clusters_node_moved();

CREATE FUNCTION clusters_cluster_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE clusters_allocation a SET region_id = NEW.region_id
    FROM clusters_node n WHERE n.cluster_id = NEW.id AND a.node_id = n.id;
    RETURN NULL;
END $$;
CREATE TRIGGER cluster_moved_allocation_region AFTER UPDATE OF region_id ON clusters_cluster
FOR EACH ROW WHEN (OLD.region_id IS DISTINCT FROM NEW.region_id) EXECUTE FUNCTION clusters_cluster_moved();
"""

DROP_TRIGGERS = """
DROP TRIGGER cluster_moved_allocation_region ON clusters_cluster;
DROP FUNCTION clusters_cluster_moved();
DROP TRIGGER node_moved_allocation_region ON clusters_node;
DROP FUNCTION clusters_node_moved();
DROP TRIGGER allocation_region ON clusters_allocation;
DROP FUNCTION clusters_allocation_set_region();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0003_allocation_region"),
    ]

    operations = [
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunSQL(TRIGGERS, DROP_TRIGGERS),
    ]
