"""Bookings that really race: threads, each with its own database connection, at the same instant."""

import random
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from psycopg2.extras import DateTimeTZRange

from accounts.choices import Role
from accounts.models import User
from accounts.services.auth import user_create
from clusters.models import GPU, Allocation, Lease
from clusters.services.booking import lease_book
from clusters.services.refusals import NoCapacity
from tests.clusters.helpers import build_fleet, later, overlapping_allocations, reserved
from tests.factories import LeaseFactory, MembershipFactory, ssh_key_for
from tests.helpers import api_client_for
from tests.races import held_open, race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def no_password_user() -> User:
    """A user without a password (hashing one takes a second of CPU), whose address is verified and
    who has an SSH key (as booking requires); the API client uses a token."""
    user = user_create(email=f"racer-{uuid.uuid4().hex[:8]}@example.com", email_verified=True)
    ssh_key_for(user)
    return user


def members(count: int, quota: int = 1000) -> list[Any]:
    """`count` users, each the owner of an organization of their own with this quota."""
    return [
        MembershipFactory.create(organization__gpu_quota=quota, role=Role.OWNER, user=no_password_user()).user
        for _ in range(count)
    ]


def test_racing_bookings_never_double_book_and_losers_get_409() -> None:
    fleet = build_fleet(clusters=2, nodes_per_cluster=2)  # 32 GPUs
    clients = [api_client_for(user) for user in members(24)]
    rng = random.Random(7)
    shared = later(0)  # every window contains [shared, shared + 1h)
    bodies = [
        reserved(
            rng.choice([1, 2, 4, 8, 16]),
            start=shared - timedelta(hours=rng.randint(0, 2)),
            hours=rng.randint(3, 5),
        )
        for _ in clients
    ]
    responses = race(
        [
            lambda c=c, b=b: c.post("/api/v1/leases/", b, format="json")
            for c, b in zip(clients, bodies, strict=True)
        ]
    )
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {201, 409}, codes
    assert codes[201] >= 2 and codes[409] >= 1
    assert all(r.json()["code"] == "no_capacity" for r in responses if r.status_code == 409)
    won = [r.json() for r in responses if r.status_code == 201]
    assert sum(lease["gpus"] for lease in won) <= 32
    assert overlapping_allocations() == 0
    assert Allocation.objects.filter(is_live=True).count() == sum(lease["gpus"] for lease in won)
    assert Lease.objects.count() == len(won) and fleet.region.leases.count() == len(won)


def test_racing_small_bookings_all_succeed_while_capacity_lasts() -> None:
    build_fleet(clusters=2, nodes_per_cluster=2)  # 32 GPUs
    clients = [api_client_for(user) for user in members(24)]
    body = reserved(1)
    responses = race([lambda c=c: c.post("/api/v1/leases/", body, format="json") for c in clients])
    assert [r.status_code for r in responses] == [201] * 24
    assert Allocation.objects.filter(is_live=True).count() == 24
    assert overlapping_allocations() == 0


def test_one_organization_racing_against_its_own_quota_stays_within_it(acme) -> None:
    build_fleet()
    acme.gpu_quota = 8
    acme.save(update_fields=["gpu_quota"])
    users = [
        MembershipFactory.create(organization=acme, role=Role.MEMBER, user=no_password_user()).user
        for _ in range(10)
    ]
    clients = [api_client_for(user, acme) for user in users]
    responses = race(
        [
            lambda c=c, i=i: c.post(
                "/api/v1/leases/", reserved(4, start=later(i % 3), hours=4), format="json"
            )
            for i, c in enumerate(clients)
        ]
    )
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 2, 403: 8}, codes
    assert all(r.json()["code"] == "quota_exceeded" for r in responses if r.status_code == 403)
    assert Lease.objects.filter(organization=acme).count() == 2


def test_concurrent_duplicates_with_one_idempotency_key_book_once(alice) -> None:
    build_fleet()
    clients = [api_client_for(alice) for _ in range(8)]
    body = reserved(1)
    responses = race(
        [
            lambda c=c: c.post("/api/v1/leases/", body, format="json", HTTP_IDEMPOTENCY_KEY="once")
            for c in clients
        ]
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert Lease.objects.count() == 1 and Allocation.objects.count() == 1


def allocate(gpu: GPU, window: tuple, holder: Lease) -> Callable[[], Allocation]:
    """Another writer's insert of an allocation, taking none of placement's locks."""
    return lambda: Allocation.objects.create(
        lease=holder, gpu=gpu, node=gpu.node, period=DateTimeTZRange(*window, "[)")
    )


def test_when_the_exclusion_constraint_fires_booking_retries_on_fresh_data(alice, settings) -> None:
    fleet = build_fleet(clusters=1, nodes_per_cluster=1)
    window = (later(0), later(2))
    holder = LeaseFactory.create(region=fleet.region, gpus=1)
    gpu0 = GPU.objects.get(index=0)
    # The other writer commits while our insert waits on the constraint.
    with held_open(allocate(gpu0, window, holder), commit_after=0.5):
        lease = lease_book(
            user=alice,
            organization=alice.memberships.get().organization,
            region=fleet.region,
            gpus=1,
            kind="reserved",
            start=window[0],
            end=window[1],
        )
    assert list(lease.allocations.values_list("gpu__index", flat=True)) == [1]
    assert overlapping_allocations() == 0


def test_after_the_last_retry_the_answer_is_no_capacity(alice, settings) -> None:
    settings.BOOKING_PLACEMENT_RETRIES = 0
    fleet = build_fleet(clusters=1, nodes_per_cluster=1)
    window = (later(0), later(2))
    holder = LeaseFactory.create(region=fleet.region, gpus=1)
    gpu0 = GPU.objects.get(index=0)
    with held_open(allocate(gpu0, window, holder), commit_after=0.5), pytest.raises(NoCapacity) as refused:
        lease_book(
            user=alice,
            organization=alice.memberships.get().organization,
            region=fleet.region,
            gpus=1,
            kind="reserved",
            start=window[0],
            end=window[1],
        )
    assert refused.value.max_gpus_available == 4  # 7 GPUs free: the largest single-node size is 4
    assert not Lease.objects.filter(booked_by=alice).exists()
    assert overlapping_allocations() == 0
