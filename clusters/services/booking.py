"""Booking: a lease is booked, extended, released or cancelled here, each with an audit row.

The database referees: the organization's row is locked for the quota and for the checks below,
the chosen nodes are locked for placement (see placement.py), and the exclusion constraint on
allocations makes an overlap impossible. When that constraint fires anyway, placement is retried
with fresh data a bounded number of times (BOOKING_PLACEMENT_RETRIES) and then the answer is
"no capacity".

A booking attempt is the organization's lock, the price, the booking checks (whatever reads they
make), and one statement that checks the quota, writes the lease, places it and writes its
allocations, keys and audit row (placement.py, clusters/sql/booking.sql).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, OperationalError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from psycopg2.extras import DateTimeTZRange

from accounts.models import Organization, SshKey, User
from accounts.selectors.booking import booking_blockers
from accounts.services.audit import audit_entry, audit_record
from clusters.choices import LIVE_LEASE_STATES, LeaseKind, LeaseState
from clusters.models import GPU, Allocation, Lease, Node, Region
from clusters.selectors.capacity import (
    Window,
    availability_for,
    gpus_held_at_peak,
    is_valid_size,
    on_demand_until,
    pools_for,
)
from clusters.selectors.offerings import alternatives_for
from clusters.selectors.prices import price_for
from clusters.services.capacity import capacity_freed
from clusters.services.charging import charging
from clusters.services.demand import demand_record
from clusters.services.lease_keys import keys_for_booking
from clusters.services.placement import (
    NO_CAPACITY,
    QUOTA_EXCEEDED,
    LeaseToPlace,
    PlacedGpu,
    Placement,
    lease_place,
    leases_place,
)
from clusters.services.refusals import InvalidState, NoCapacity, NotExtendable, QuotaExceeded
from core.durations import duration_words
from core.refusals import Refused

EXCLUSION_VIOLATION = "23P01"
DEADLOCK_DETECTED = "40P01"


@dataclass(frozen=True)
class BookingAttempt:
    """A booking about to be placed, as the booking checks see it.

    `organization` was read under its row lock, in the booking's transaction: no other booking of
    the organization commits until this one does, so a check of what it holds or spends is sound.
    """

    user: User
    organization: Organization
    region: Region
    gpus: int
    kind: str
    window: Window
    ssh_keys: Sequence[SshKey]
    price_per_gpu_hour: Decimal
    # What a check read and the charge of the same booking may reuse, under a key its app owns.
    findings: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class LeaseOptions:
    """What the owner chose about the lease beyond its GPUs and window."""

    replace_automatically: bool = False
    replaces: Lease | None = None


NO_OPTIONS = LeaseOptions()

BookingCheck = Callable[[BookingAttempt], None]
_booking_checks: list[BookingCheck] = []


def booking_check(check: BookingCheck) -> BookingCheck:
    """Register a rule every booking must pass, checked under the organization's lock before placement.

    The check raises a `Refused` (with its code, status and field) to refuse; nothing has been
    written yet, and the booking's transaction is rolled back. Checks run in the order they were
    registered; an app above clusters registers its own from its AppConfig.ready(), since
    clusters cannot import it. The quota is checked after them, with placement (one statement).
    """
    _booking_checks.append(check)
    return check


@booking_check
def _user_may_book(attempt: BookingAttempt) -> None:
    """First of all: accounts' reasons this user may not book yet (an unverified email address)."""
    blockers = booking_blockers(user=attempt.user, organization=attempt.organization)
    if blockers:
        raise blockers[0]


def lease_book(
    *,
    user: User,
    organization: Organization,
    region: Region,
    gpus: int,
    kind: str,
    start: datetime | None = None,
    end: datetime | None = None,
    ssh_keys: Sequence[SshKey] = (),
    from_queue: bool = False,
    options: LeaseOptions = NO_OPTIONS,
) -> Lease:
    """Book `gpus` GPUs in `region`: a reserved window [start, end), or on-demand from now.

    A refusal for want of capacity or quota is recorded as unmet demand; one for want of
    capacity carries the nearest offerings and the regions where the size is free now. Not so
    when booking a queued request (`from_queue`): refused, it stays queued, which is its demand.
    With no `ssh_keys` chosen the lease takes all the booker's; a booker without any is refused.
    """
    window = booking_window(kind=kind, start=start, end=end, gpus=gpus)
    ssh_keys = keys_for_booking(user=user, ssh_keys=ssh_keys)
    if from_queue:
        return _lease_book_with_retries(
            user=user,
            organization=organization,
            region=region,
            gpus=gpus,
            kind=kind,
            window=window,
            ssh_keys=ssh_keys,
            options=options,
        )
    try:
        return _lease_book_with_retries(
            user=user,
            organization=organization,
            region=region,
            gpus=gpus,
            kind=kind,
            window=window,
            ssh_keys=ssh_keys,
            options=options,
        )
    except (NoCapacity, QuotaExceeded) as refusal:
        demand_record(
            organization=organization,
            region=region,
            reason=refusal.code,
            kind=kind,
            gpus=gpus,
            start=window.start,
            end=window.end,
        )
        if isinstance(refusal, NoCapacity):
            raise _with_alternatives(refusal, organization=organization, window=window) from None
        raise


@dataclass(frozen=True)
class OnDemandBooking:
    """An on-demand lease to book with others (`leases_book_on_demand`)."""

    user: User
    organization: Organization
    region: Region
    gpus: int
    ssh_keys: Sequence[SshKey]


def leases_book_on_demand(*, bookings: Sequence[OnDemandBooking]) -> list[Lease]:
    """Book on-demand leases one after another as `lease_book(from_queue=True)` would, in one round
    trip, up to the first that is refused: the leases booked, for a prefix of `bookings`.

    For the queue's dispatcher, inside its transaction. The first booking not made (refused by a
    booking check, the quota or capacity, or a GPU lost to another writer) and those after it are
    the caller's to book alone with lease_book, which says why. The organizations are locked once
    each (in id order), each region's price read once, and the booking checks run once per
    distinct attempt (who, which organization, where, how many, at what price): an on-demand
    booking writes nothing a check reads (it commits to no amount; its usage is debited as it
    runs), so the same attempt made again in the transaction gets the same answer.
    """
    organizations = _lock_organizations([booking.organization.pk for booking in bookings])
    prices: dict[int, Decimal] = {}
    checked: set[tuple[int, int, int, int, Decimal]] = set()
    batch: list[LeaseToPlace] = []
    for booking in bookings:
        try:
            attempt = _on_demand_attempt(booking, organizations[booking.organization.pk], prices)
            key = (
                attempt.user.pk,
                attempt.organization.pk,
                attempt.region.pk,
                attempt.gpus,
                attempt.price_per_gpu_hour,
            )
            if key not in checked:
                _check_booking(attempt)
                checked.add(key)
        except (Refused, ValidationError):
            break
        batch.append(_to_place(attempt))
    booked = []
    for item, placement in zip(batch, leases_place(batch=batch) if batch else [], strict=False):
        if placement.refusal is not None:
            break
        _saved(item.lease, placement)
        charging().lease_booked(lease=item.lease, actor=item.lease.booked_by)
        booked.append(item.lease)
    return booked


def _on_demand_attempt(
    booking: OnDemandBooking, organization: Organization, prices: dict[int, Decimal]
) -> BookingAttempt:
    window = booking_window(kind=LeaseKind.ON_DEMAND, start=None, end=None, gpus=booking.gpus)
    region = booking.region
    if region.pk not in prices:
        prices[region.pk] = _price(kind=LeaseKind.ON_DEMAND, region=region, window=window)
    return BookingAttempt(
        user=booking.user,
        organization=organization,
        region=region,
        gpus=booking.gpus,
        kind=LeaseKind.ON_DEMAND,
        window=window,
        ssh_keys=keys_for_booking(user=booking.user, ssh_keys=booking.ssh_keys),
        price_per_gpu_hour=prices[region.pk],
    )


def _to_place(attempt: BookingAttempt) -> LeaseToPlace:
    """What lease_place would be given for this attempt (see _lease_book_once)."""
    lease = _new_lease(attempt, NO_OPTIONS)
    organization = attempt.organization
    return LeaseToPlace(
        lease=lease,
        audit=audit_entry(
            actor=attempt.user,
            action="lease.book",
            obj=lease,
            organization=organization,
            after=snapshot(lease),
        ),
        ssh_keys=attempt.ssh_keys,
        pools=pools_for(organization),
        soon=attempt.window.overlaps_soon(),
        quota=organization.gpu_quota - _queued(organization),
    )


def _with_alternatives(refusal: NoCapacity, *, organization: Organization, window: Window) -> NoCapacity:
    # Read after the refused attempt rolled back, so the offerings are what can be booked now.
    found = alternatives_for(organization=organization, gpus=refusal.gpus, window=window)
    until = on_demand_until(organization=organization, gpus=refusal.gpus) if window.end is None else []
    return NoCapacity(
        gpus=refusal.gpus,
        max_gpus_available=refusal.max_gpus_available,
        offerings=found.offerings,
        regions_free_now=found.regions_free_now,
        on_demand_until=until,
    )


def _lease_book_with_retries(
    *,
    user: User,
    organization: Organization,
    region: Region,
    gpus: int,
    kind: str,
    window: Window,
    ssh_keys: Sequence[SshKey],
    options: LeaseOptions,
) -> Lease:
    """Each attempt is its own atomic block (a savepoint inside a caller's transaction), so losing
    a race for a GPU rolls back only that attempt before placement runs again on fresh data."""
    for _ in range(settings.BOOKING_PLACEMENT_RETRIES + 1):
        try:
            return _lease_book_once(
                user=user,
                organization=organization,
                region=region,
                gpus=gpus,
                kind=kind,
                window=window,
                ssh_keys=ssh_keys,
                options=options,
            )
        except (IntegrityError, OperationalError) as error:
            if not lost_race(error):
                raise
    raise _no_capacity(region=region, window=window, gpus=gpus, organization=organization)


@transaction.atomic
def _lease_book_once(
    *,
    user: User,
    organization: Organization,
    region: Region,
    gpus: int,
    kind: str,
    window: Window,
    ssh_keys: Sequence[SshKey],
    options: LeaseOptions,
) -> Lease:
    organization = _lock_organization(organization)
    attempt = BookingAttempt(
        user=user,
        organization=organization,
        region=region,
        gpus=gpus,
        kind=kind,
        window=window,
        ssh_keys=ssh_keys,
        price_per_gpu_hour=_price(kind=kind, region=region, window=window),
    )
    _check_booking(attempt)
    lease = _new_lease(attempt, options)
    placement = lease_place(
        lease=lease,
        audit=audit_entry(
            actor=user, action="lease.book", obj=lease, organization=organization, after=snapshot(lease)
        ),
        ssh_keys=ssh_keys,
        pools=pools_for(organization),
        soon=window.overlaps_soon(),
        quota=organization.gpu_quota - _queued(organization) + _replaced_gpus(options),
    )
    _refuse_unplaced(attempt, placement)
    _saved(lease, placement)
    _remember(lease, placement.placed, window, ssh_keys)
    # What the booking commits to (a reserved window) is charged in its transaction (billing).
    charging().lease_booked(lease=lease, actor=user, findings=attempt.findings)
    return lease


def _replaced_gpus(options: LeaseOptions) -> int:
    """A replacement runs while the lease it replaces sits on a failed node: those GPUs do not count."""
    return options.replaces.gpus if options.replaces is not None else 0


def _check_booking(attempt: BookingAttempt) -> None:
    """The booking checks: clusters' own rules, then the ones other apps registered (booking_check)."""
    for check in _booking_checks:
        check(attempt)


def _new_lease(attempt: BookingAttempt, options: LeaseOptions) -> Lease:
    """The lease row as Django builds it (every default), for the database function to insert."""
    return Lease(
        organization=attempt.organization,
        booked_by=attempt.user,
        region=attempt.region,
        gpus=attempt.gpus,
        kind=attempt.kind,
        start=attempt.window.start,
        end=attempt.window.end,
        price_per_gpu_hour=attempt.price_per_gpu_hour,
        ssh_public_keys=[key.public_key for key in attempt.ssh_keys],
        replace_automatically=options.replace_automatically,
        replaces=options.replaces,
    )


def _refuse_unplaced(attempt: BookingAttempt, placement: Placement) -> None:
    if placement.refusal == QUOTA_EXCEEDED:
        organization = attempt.organization
        raise QuotaExceeded(
            quota=organization.gpu_quota,
            gpus_held=placement.gpus_held,
            gpus=attempt.gpus,
            gpus_queued=_queued(organization),
        )
    if placement.refusal == NO_CAPACITY:
        raise _no_capacity(
            region=attempt.region, window=attempt.window, gpus=attempt.gpus, organization=attempt.organization
        )


def _no_capacity(*, region: Region, window: Window, gpus: int, organization: Organization) -> NoCapacity:
    """The refusal when nothing fits, saying what would."""
    available = availability_for(region=region, window=window, gpus=gpus, organization=organization)
    return NoCapacity(gpus=gpus, max_gpus_available=available.max_gpus_available)


def _saved(lease: Lease, placement: Placement) -> None:
    """Mark the instance as the row the database function inserted."""
    lease.pk = placement.lease_id
    lease._state.adding = False
    lease._state.db = DEFAULT_DB_ALIAS


def booking_window(*, kind: str, start: datetime | None, end: datetime | None, gpus: int) -> Window:
    """The lease's window, or a ValidationError naming each field that breaks a booking rule."""
    errors: dict[str, str] = {}
    if not is_valid_size(gpus):
        errors["gpus"] = "Book 1, 2, 4 or 8 GPUs on one node, or a multiple of 8 (whole nodes) above 8."
    now = timezone.now()
    if kind == LeaseKind.ON_DEMAND:
        if start is not None:
            errors["start"] = "An on-demand lease starts now and runs until released: leave it out."
        errors.update(_until_errors(end, now))
        window = Window(start=now, end=end)
    else:
        errors.update(_reserved_window_errors(start, end, now))
        window = Window(start=start, end=end)  # type: ignore[arg-type]
    if errors:
        raise ValidationError(errors)
    return window


def _until_errors(end: datetime | None, now: datetime) -> dict[str, str]:
    """An on-demand lease may end at a set time ("until"): when the GPUs are free only until the next
    reservation on them, the 409 offers that end."""
    if end is None:
        return {}
    if not _on_step(end):
        return {"end": "Times must fall on whole minutes (no seconds)."}
    if end - now < settings.BOOKING_MIN_DURATION:
        return {"end": f"A lease lasts at least {duration_words(settings.BOOKING_MIN_DURATION)}."}
    if end - now > settings.BOOKING_MAX_DURATION:
        return {"end": f"A lease lasts at most {duration_words(settings.BOOKING_MAX_DURATION)}."}
    return {}


def _reserved_window_errors(start: datetime | None, end: datetime | None, now: datetime) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, value in (("start", start), ("end", end)):
        if value is None:
            errors[name] = "A reserved lease needs a start and an end."
        elif not _on_step(value):
            errors[name] = "Times must fall on whole minutes (no seconds)."
    if errors:
        return errors
    assert start is not None and end is not None
    if start < _floor_to_step(now):
        errors["start"] = "The start may not be in the past."
    elif start > now + settings.BOOKING_MAX_AHEAD:
        errors["start"] = f"The start may be at most {duration_words(settings.BOOKING_MAX_AHEAD)} ahead."
    errors.update(_duration_errors(start, end))
    return errors


def _duration_errors(start: datetime, end: datetime) -> dict[str, str]:
    if end <= start:
        return {"end": "The end must be after the start."}
    if end - start < settings.BOOKING_MIN_DURATION:
        return {"end": f"A lease lasts at least {duration_words(settings.BOOKING_MIN_DURATION)}."}
    if end - start > settings.BOOKING_MAX_DURATION:
        return {"end": f"A lease lasts at most {duration_words(settings.BOOKING_MAX_DURATION)}."}
    return {}


def _on_step(value: datetime) -> bool:
    return _floor_to_step(value) == value


def _floor_to_step(value: datetime) -> datetime:
    step = settings.BOOKING_TIME_STEP
    return value - (value - datetime.min.replace(tzinfo=value.tzinfo)) % step


# The organization's row, locked, and the GPUs its queued requests ask for (they count against its
# quota; creating a request takes the same lock), in one round trip.
LOCK_ORGANIZATION_SQL = """
SELECT o.*, (SELECT coalesce(sum(r.gpus), 0) FROM clusters_leaserequest r
             WHERE r.organization_id = o.id AND r.state = 'queued') AS gpus_queued
FROM accounts_organization o WHERE o.id = %s FOR NO KEY UPDATE OF o
"""


def _lock_organization(organization: Organization) -> Organization:
    # Serializes one organization's bookings so the quota is checked against committed leases;
    # NO KEY UPDATE leaves rows that merely reference the organization free to be written. Raw
    # SQL: the hot path of every booking, read as the ORM would (every column, its converters).
    return next(iter(Organization.objects.raw(LOCK_ORGANIZATION_SQL, [organization.pk])))


# As LOCK_ORGANIZATION_SQL, for several organizations, locked in id order: two transactions that
# lock several take them in the same order, so they cannot deadlock on them.
LOCK_ORGANIZATIONS_SQL = """
SELECT o.*, (SELECT coalesce(sum(r.gpus), 0) FROM clusters_leaserequest r
             WHERE r.organization_id = o.id AND r.state = 'queued') AS gpus_queued
FROM accounts_organization o WHERE o.id = ANY(%s) ORDER BY o.id FOR NO KEY UPDATE OF o
"""


def _lock_organizations(ids: Sequence[int]) -> dict[int, Organization]:
    locked = Organization.objects.raw(LOCK_ORGANIZATIONS_SQL, [sorted(set(ids))])
    return {organization.pk: organization for organization in locked}


def _queued(organization: Organization) -> int:
    """The GPUs of its queued requests, read with its row lock (LOCK_ORGANIZATION_SQL)."""
    return int(organization.gpus_queued)  # type: ignore[attr-defined]


def _check_quota(
    *, organization: Organization, window: Window, gpus: int, exclude: int | None = None
) -> None:
    held = gpus_held_at_peak(organization=organization, window=window, exclude_lease_id=exclude)
    queued = _queued(organization)
    if held + queued + gpus > organization.gpu_quota:
        raise QuotaExceeded(quota=organization.gpu_quota, gpus_held=held, gpus=gpus, gpus_queued=queued)


def _price(*, kind: str, region: Region, window: Window) -> Decimal:
    # A reserved lease's term price comes from its length (clusters/selectors/prices.py).
    duration = None if window.end is None else window.end - window.start
    return price_for(kind=kind, region=region, at=timezone.now(), duration=duration)


def _remember(lease: Lease, placed: Sequence[PlacedGpu], window: Window, ssh_keys: Sequence[SshKey]) -> None:
    """Cache on the lease the rows just written, as prefetch_related would, so rendering reads nothing back.

    The node and GPU instances carry only what placement returned; any other field of theirs
    is deferred and loads from the database if read.
    """
    period = DateTimeTZRange(window.start, window.end, "[)")
    allocations = []
    for gpu in placed:
        allocation = Allocation.from_db(
            DEFAULT_DB_ALIAS,
            ["id", "lease_id", "gpu_id", "node_id", "period", "is_live"],
            [gpu.allocation_id, lease.pk, gpu.gpu_id, gpu.node_id, period, True],
        )
        allocation.lease = lease
        allocation.node = Node.from_db(DEFAULT_DB_ALIAS, ["id", "hostname"], [gpu.node_id, gpu.hostname])
        allocation.gpu = GPU.from_db(
            DEFAULT_DB_ALIAS, ["id", "node_id", "index"], [gpu.gpu_id, gpu.node_id, gpu.index]
        )
        allocations.append(allocation)
    lease._prefetched_objects_cache = {  # type: ignore[attr-defined]
        "allocations": _prefetched(lease.allocations.all(), allocations),
        "ssh_keys": _prefetched(lease.ssh_keys.all(), list(ssh_keys)),
    }


def _prefetched(queryset: QuerySet[Any], rows: list[Any]) -> QuerySet[Any]:
    # What prefetch_related stores for a relation: a queryset whose results are already known.
    queryset._result_cache = rows
    queryset._prefetch_done = True  # type: ignore[attr-defined]
    return queryset


def lost_race(error: Exception) -> bool:
    """Another booking took a GPU first (exclusion constraint), or two waited on each other's nodes."""
    return getattr(error.__cause__, "pgcode", None) in (EXCLUSION_VIOLATION, DEADLOCK_DETECTED)


def is_exclusion_violation(error: IntegrityError) -> bool:
    """Whether the error is the allocation exclusion constraint firing (another lease took a GPU)."""
    return getattr(error.__cause__, "pgcode", None) == EXCLUSION_VIOLATION


def snapshot(lease: Lease) -> dict[str, object]:
    """What the audit trail records of a lease."""
    return {
        "state": lease.state,
        "gpus": lease.gpus,
        "kind": lease.kind,
        "region": lease.region.code,
        "start": lease.start.isoformat(),
        "end": lease.end.isoformat() if lease.end else None,
        "price_per_gpu_hour": str(lease.price_per_gpu_hour),
    }


@transaction.atomic
def lease_extend(*, user: User, lease: Lease, end: datetime) -> Lease:
    """Move a reserved lease's end later, on the same GPUs, if they are free until then."""
    lease = _lock_lease(lease)
    if lease.kind != LeaseKind.RESERVED or lease.state not in LIVE_LEASE_STATES:
        raise InvalidState(
            f"Only a scheduled or active reserved lease can be extended; this one is {lease.state}."
        )
    old_end: datetime = lease.end  # type: ignore[assignment]
    _check_extension(lease, old_end, end)
    organization = _lock_organization(lease.organization)
    _check_quota(organization=organization, window=Window(old_end, end), gpus=lease.gpus, exclude=lease.pk)
    _lock_nodes_of(lease)
    _check_gpus_free(lease, old_end, end)
    before = snapshot(lease)
    _stretch_allocations(lease, old_end, end)
    lease.end = end
    lease.save(update_fields=["end"])
    charging().lease_extended(lease=lease, old_end=old_end, actor=user)
    audit_record(
        actor=user,
        action="lease.extend",
        obj=lease,
        organization=organization,
        before=before,
        after=snapshot(lease),
    )
    return lease


def _lock_lease(lease: Lease) -> Lease:
    return (
        Lease.objects.select_for_update(of=("self",))
        .select_related("region", "organization")
        .get(pk=lease.pk)
    )


def _check_extension(lease: Lease, old_end: datetime, end: datetime) -> None:
    if not _on_step(end):
        raise ValidationError({"end": "Times must fall on whole minutes (no seconds)."})
    if end <= old_end:
        raise ValidationError({"end": "The new end must be later than the current end."})
    if end <= timezone.now():
        raise ValidationError({"end": "The new end must be in the future."})
    if end - lease.start > settings.BOOKING_MAX_DURATION:
        raise ValidationError(
            {"end": f"A lease lasts at most {duration_words(settings.BOOKING_MAX_DURATION)}."}
        )


def _lock_nodes_of(lease: Lease) -> None:
    # The same node locks placement takes: no new lease lands on these GPUs while we look.
    node_ids = lease.allocations.filter(is_live=True).values("node_id")
    list(Node.objects.select_for_update(no_key=True).filter(pk__in=node_ids).order_by("pk").values_list("pk"))


def _check_gpus_free(lease: Lease, old_end: datetime, end: datetime) -> None:
    gpu_ids = lease.allocations.filter(is_live=True).values("gpu_id")
    clash = (
        Allocation.objects.filter(gpu_id__in=gpu_ids, is_live=True, period__overlap=(old_end, end))
        .exclude(lease=lease)
        .order_by("period__startswith")
        .values_list("period__startswith", flat=True)
        .first()
    )
    if clash is not None:
        raise NotExtendable(free_until=max(clash, old_end))


def _stretch_allocations(lease: Lease, old_end: datetime, end: datetime) -> None:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE clusters_allocation SET period = tstzrange(lower(period), %s, '[)') "
                "WHERE lease_id = %s AND is_live",
                [end, lease.pk],
            )
    except IntegrityError as error:
        if not is_exclusion_violation(error):
            raise
        raise NotExtendable(free_until=old_end) from error


@transaction.atomic
def lease_cancel(*, user: User, lease: Lease) -> Lease:
    """Cancel a scheduled lease before its start: its allocations stop holding GPUs."""
    lease = _lock_lease(lease)
    if lease.state != LeaseState.SCHEDULED:
        raise InvalidState(f"Only a scheduled lease can be cancelled; this one is {lease.state}.")
    if lease.start <= timezone.now():
        raise InvalidState("This lease has already started; release it instead.")
    return _cancel(user=user, lease=lease, reason="Cancelled before its start.")


def _cancel(*, user: User | None, lease: Lease, reason: str) -> Lease:
    before = snapshot(lease)
    lease.allocations.update(is_live=False)
    lease.state, lease.state_reason = LeaseState.CANCELLED, reason
    lease.save(update_fields=["state", "state_reason"])
    charging().lease_cancelled(lease=lease, actor=user, at=timezone.now())
    audit_record(
        actor=user,
        action="lease.cancel",
        obj=lease,
        organization=lease.organization,
        before=before,
        after=snapshot(lease),
    )
    capacity_freed()
    return lease


@transaction.atomic
def lease_release(*, user: User | None, lease: Lease) -> Lease:
    """End an active lease now (the run-time sweeper finishes it); a scheduled one is cancelled.

    `user` is None when billing releases it (the balance ran out, the account is suspended).
    """
    lease = _lock_lease(lease)
    if lease.state == LeaseState.SCHEDULED:
        return _cancel(user=user, lease=lease, reason="Released before it started.")
    now = timezone.now()
    if lease.state != LeaseState.ACTIVE or (lease.end is not None and lease.end <= now) or lease.start >= now:
        raise InvalidState(f"Only a running lease can be released; this one is {lease.state}.")
    before = snapshot(lease)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE clusters_allocation SET period = tstzrange(lower(period), %s, '[)') "
            "WHERE lease_id = %s AND is_live AND (upper_inf(period) OR upper(period) > %s)",
            [now, lease.pk, now],
        )
    lease.end = now
    lease.save(update_fields=["end"])
    audit_record(
        actor=user,
        action="lease.release",
        obj=lease,
        organization=lease.organization,
        before=before,
        after=snapshot(lease),
    )
    capacity_freed()
    return lease
