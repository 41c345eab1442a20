"""Reads of the fleet."""

from django.db.models import Count, Q, QuerySet

from clusters.choices import GpuHealth, NodeState, Pool
from clusters.models import Region


def regions_with_capacity() -> QuerySet[Region]:
    """Every region with its GPUs in total, healthy (placeable), and in each pool, in one query."""
    placeable = Q(clusters__nodes__gpus__health=GpuHealth.HEALTHY, clusters__nodes__state=NodeState.AVAILABLE)
    return Region.objects.annotate(
        gpus_total=Count("clusters__nodes__gpus"),
        gpus_healthy=Count("clusters__nodes__gpus", filter=placeable),
        gpus_general=Count("clusters__nodes__gpus", filter=Q(clusters__nodes__pool=Pool.GENERAL)),
        gpus_early_stage=Count("clusters__nodes__gpus", filter=Q(clusters__nodes__pool=Pool.EARLY_STAGE)),
    ).order_by("code")
