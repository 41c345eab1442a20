"""Each region's run-time work goes to its own queues (`poll.<region>`, `leases.<region>`), a sweep of
one region touches only that region's leases, and a region whose queue no worker has served for
RUNTIME_TAKEOVER_S has its work sent to a region that is served as well."""

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from accounts.models import Organization, User
from clusters.choices import LeaseState
from clusters.models import Lease
from clusters.selectors.runtime import KEY_SERVED, KEY_TAKEOVERS
from clusters.services.lifecycle import leases_enforce
from clusters.services.runtime import Route, region_routes
from clusters.tasks import fleet_poll_dispatch, leases_enforce_dispatch
from core.cache import redis_client
from tests.clusters.helpers import Fleet, gpus_of, lease_on

REGIONS = ("us-tx-1", "us-va-1", "us-wa-1")


@pytest.fixture(autouse=True)
def empty_redis() -> None:
    redis.Redis.from_url(django_settings.REDIS_URL).flushdb()


def queued(queue: str) -> list[dict[str, Any]]:
    """The tasks waiting in a queue: name, args and kwargs, as a worker would read them."""
    tasks = []
    for raw in redis_client().lrange(queue, 0, -1):
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        tasks.append({"task": message["headers"]["task"], "args": args, "kwargs": kwargs})
    return tasks


def test_each_region_s_nodes_are_polled_from_its_own_queue(fleet_of: Callable[..., Fleet]) -> None:
    fleets = {region: fleet_of(2, region=region) for region in REGIONS[:2]}

    assert fleet_poll_dispatch.apply().result == 2

    for region, fleet in fleets.items():
        [task] = queued(f"poll.{region}")
        assert task["task"] == "clusters.tasks.fleet_poll_chunk"
        assert sorted(task["args"][0]) == sorted(node.pk for node in fleet.nodes)
        assert (task["kwargs"]["region"], task["kwargs"]["queue"]) == (region, f"poll.{region}")
    assert queued("celery") == []


def test_each_region_s_lease_sweep_goes_to_its_own_queue(fleet_of: Callable[..., Fleet]) -> None:
    for region in REGIONS:
        fleet_of(1, region=region)

    assert leases_enforce_dispatch.apply().result == 3

    for region in REGIONS:
        [task] = queued(f"leases.{region}")
        assert task["task"] == "clusters.tasks.leases_enforce" and task["kwargs"]["region"] == region


def test_a_sweep_of_one_region_starts_only_that_region_s_leases(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    texas, virginia = (fleet_of(1, region=region).nodes[0] for region in REGIONS[:2])
    here = lease_on(gpus_of(texas, [0]), organization=acme, booked_by=alice)
    there = lease_on(gpus_of(virginia, [0]), organization=acme, booked_by=alice)

    report = leases_enforce(region="us-tx-1")

    assert report.started == 1
    assert Lease.objects.get(pk=here.pk).state == LeaseState.ACTIVE
    assert Lease.objects.get(pk=there.pk).state == LeaseState.SCHEDULED


def test_a_region_never_served_yet_gets_the_timeout_from_when_it_is_first_seen(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    settings.RUNTIME_TAKEOVER_S = 20
    for region in REGIONS:
        fleet_of(1, region=region)
    now = time.time()

    first = region_routes(kind="leases", now=now)
    later = region_routes(kind="leases", now=now + 19)

    assert first == later == [Route(region, f"leases.{region}") for region in REGIONS]


def test_a_region_not_served_for_the_timeout_is_also_sent_to_a_served_region(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    settings.RUNTIME_TAKEOVER_S = 20
    for region in REGIONS:
        fleet_of(1, region=region)
    now = time.time()
    redis_client().hset(
        KEY_SERVED, mapping={"poll.us-tx-1": now - 3, "poll.us-va-1": now - 21, "poll.us-wa-1": now}
    )

    routes = region_routes(kind="poll", now=now)

    assert routes == [
        Route("us-tx-1", "poll.us-tx-1"),
        Route("us-va-1", "poll.us-va-1"),
        Route("us-va-1", "poll.us-wa-1", takeover=True),
        Route("us-wa-1", "poll.us-wa-1"),
    ]
    assert redis_client().hgetall(KEY_TAKEOVERS) == {b"poll|us-va-1|us-wa-1": b"1"}


def test_with_no_region_served_nothing_is_taken_over(fleet_of: Callable[..., Fleet], settings) -> None:
    settings.RUNTIME_TAKEOVER_S = 20
    for region in REGIONS[:2]:
        fleet_of(1, region=region)
    now = time.time()
    redis_client().hset(KEY_SERVED, mapping={"leases.us-tx-1": now - 60, "leases.us-va-1": now - 60})

    routes = region_routes(kind="leases", now=now)

    assert [route.takeover for route in routes] == [False, False]


def test_a_second_poll_tick_within_the_gap_dispatches_nothing(fleet_of: Callable[..., Fleet]) -> None:
    fleet_of(1)

    sent = [fleet_poll_dispatch.apply().result, fleet_poll_dispatch.apply().result]

    assert sent == [1, 0]
    assert len(queued("poll.us-tx-1")) == 1


def test_a_poll_tick_a_little_under_an_interval_after_the_last_still_dispatches(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    """A tick that waited in the queue, then its successor on time: both poll, whatever the clock's
    phase (fixed one-interval slots dropped the second when both fell in one slot)."""
    settings.POLL_INTERVAL_S = 1
    fleet_of(1)
    while time.time() % 1 > 0.1:  # early in a second, so both ticks fall in the same second
        time.sleep(0.01)

    first = fleet_poll_dispatch.apply().result
    time.sleep(0.75)
    second = fleet_poll_dispatch.apply().result

    assert (first, second) == (1, 1)
    assert len(queued("poll.us-tx-1")) == 2
