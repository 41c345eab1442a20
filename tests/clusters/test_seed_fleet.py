"""seed_fleet: a fleet shaped like the real one, created idempotently."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from clusters.choices import Pool
from clusters.models import GPU, Cluster, Node, PriceBookEntry, Region


def test_it_creates_three_regions_clusters_of_32_and_eight_gpus_a_node(db) -> None:
    call_command("seed_fleet", "--nodes", "200")
    assert sorted(Region.objects.values_list("code", flat=True)) == ["us-tx-1", "us-va-1", "us-wa-1"]
    assert Node.objects.count() == 200 and GPU.objects.count() == 1600
    per_cluster = Cluster.objects.annotate(n=Count("nodes")).values_list("n", flat=True)
    assert max(per_cluster) == 32 and all(n > 0 for n in per_cluster)
    assert set(Node.objects.annotate(g=Count("gpus")).values_list("g", flat=True)) == {8}
    tx = Node.objects.filter(cluster__region__code="us-tx-1")
    assert tx.count() == 67 and tx.first().hostname.startswith("tx1-c01-n")


def test_running_it_twice_changes_nothing(db) -> None:
    call_command("seed_fleet", "--nodes", "96")
    before = (
        Node.objects.count(),
        GPU.objects.count(),
        Cluster.objects.count(),
        PriceBookEntry.objects.count(),
    )
    call_command("seed_fleet", "--nodes", "96")
    after = (
        Node.objects.count(),
        GPU.objects.count(),
        Cluster.objects.count(),
        PriceBookEntry.objects.count(),
    )
    assert before == after == (96, 768, 3, 2)


@pytest.mark.parametrize(("share", "early_per_region"), [(0.25, 8), (0.5, 16), (0.0, 0)])
def test_it_puts_the_given_share_of_each_region_in_the_early_stage_pool(db, share, early_per_region) -> None:
    call_command("seed_fleet", "--nodes", "96", "--early-stage-share", str(share))
    for region in Region.objects.all():
        early = Node.objects.filter(cluster__region=region, pool=Pool.EARLY_STAGE).count()
        assert early == early_per_region


def test_gpu_uuids_are_unique_and_stable(db) -> None:
    call_command("seed_fleet", "--nodes", "3")
    uuids = list(GPU.objects.values_list("uuid", flat=True))
    assert len(set(uuids)) == 24 and all(u.startswith("GPU-") for u in uuids)


def test_it_refuses_a_share_outside_zero_to_one(db) -> None:
    with pytest.raises(CommandError, match="between 0 and 1"):
        call_command("seed_fleet", "--nodes", "3", "--early-stage-share", "1.5")
    assert not Node.objects.exists()


def test_on_demand_is_priced_above_reserved(db) -> None:
    call_command("seed_fleet", "--nodes", "3")
    prices = dict(PriceBookEntry.objects.values_list("kind", "price_per_gpu_hour"))
    assert prices["on_demand"] > prices["reserved"] > 0
