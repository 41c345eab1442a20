"""Property-based: on random fleet states, the first offering starts exactly where plain best fit, written
out in Python, first finds room, and in the pool placement would then use."""

from dataclasses import replace
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clusters.choices import GPUS_PER_NODE, Pool
from clusters.models import GPU
from clusters.selectors.capacity import pools_for
from clusters.selectors.offerings import (
    OFFERINGS_SQL,
    PROBE_NODES,
    WHOLE_NODE_OFFERINGS_SQL,
    _params,
    capacity_offerings,
    ceil_to_step,
)
from tests.clusters.helpers import later
from tests.clusters.test_placement_properties import (
    NODES,
    State,
    arrange,
    expected_placement,
    hours_from,
    states,
)

pytestmark = pytest.mark.usefixtures("big_quota")

SEARCHED_HOURS = 16  # every busy period of `states` ends by hour 12


def expected_first(state: State, hostnames: list[str]) -> tuple[int, str] | None:
    """The first whole hour from 0 at which best fit places the lease, and the pool it lands in.

    A window can only begin to fit where the search starts or where a busy period ends, and every
    busy period of `states` ends on a whole hour, so trying each hour is trying every candidate.
    """
    for hour in range(SEARCHED_HOURS):
        placed = expected_placement(replace(state, start=hour), hostnames)
        if placed is not None:
            node = hostnames.index(next(iter(placed)))
            return hour, Pool.EARLY_STAGE if node in state.early_stage_nodes else Pool.GENERAL
    return None


# The probe that answers a lease of one node at the first window looks at PROBE_NODES nodes of each
# pool: on the test fleet it sees them all, so it is also run seeing one, where its "not known"
# leaves the answer to the sweep.
@pytest.mark.parametrize("probe", [PROBE_NODES, 1])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=states, hours=st.integers(1, 4))
def test_the_first_offering_is_where_plain_best_fit_first_finds_room(
    acme, fleet, probe, state, hours
) -> None:
    state = replace(state, hours=hours)
    base = later(0)
    hostnames = [node.hostname for node in fleet.nodes]
    with transaction.atomic(), patch("clusters.selectors.offerings.PROBE_NODES", probe):
        arrange(fleet, state, acme, base)
        found = capacity_offerings(
            organization=acme,
            gpus=state.gpus,
            length=timedelta(hours=hours),
            earliest_start=base,
            latest_start=hours_from(base, SEARCHED_HOURS - 1),
        )
        transaction.set_rollback(True)
    expected = expected_first(state, hostnames)
    got = (found[0].start, found[0].pool) if found else None
    assert got == (None if expected is None else (hours_from(base, expected[0]), expected[1]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    state=states,
    hours=st.integers(1, 4),
    nodes=st.sampled_from([1, 1, 2, 3]),
    cleaning=st.sets(st.tuples(st.integers(0, NODES - 1), st.integers(0, GPUS_PER_NODE - 1)), max_size=3),
)
def test_the_whole_node_sweep_finds_the_intervals_the_per_gpu_sweep_finds(
    acme, fleet, state, hours, nodes, cleaning
) -> None:
    """Leases of whole nodes are searched per node (WHOLE_NODE_OFFERINGS_SQL); the per-GPU sweep it
    replaced for them must answer the same intervals on every state (failed GPUs, GPUs awaiting
    cleanup, drained nodes, both pools)."""
    now = timezone.now()
    with transaction.atomic():
        arrange(fleet, state, acme, later(0))
        for n, g in cleaning:
            GPU.objects.filter(node=fleet.nodes[n], index=g).update(needs_cleanup=True)
        x0 = ceil_to_step(now)
        params = _params(
            pools_for(acme),
            nodes * GPUS_PER_NODE,
            timedelta(hours=hours),
            [fleet.region],
            x0,
            hours_from(x0, SEARCHED_HOURS),
            now,
        )
        with connection.cursor() as cursor:
            cursor.execute(OFFERINGS_SQL, params)
            per_gpu = cursor.fetchall()
            cursor.execute(WHOLE_NODE_OFFERINGS_SQL, params)
            per_node = cursor.fetchall()
        transaction.set_rollback(True)
    assert per_node == per_gpu
