"""Queued lease requests: asked for when nothing fits, booked the moment capacity frees, fairly.

Fair order: oldest first. An early-stage organization's request places in the early-stage pool
first and no other organization can place there, so within that pool approved early-stage
organizations always come first; in the general pool the oldest request comes first.

Bounded backfill: a request that does not fit yet does not stop smaller or other requests behind
it from being booked, but each dispatch in which one behind it was booked first counts as passing
it over; once a request has been passed over LEASE_REQUEST_BACKFILL_LIMIT times, nothing behind it
that wants one of its regions is booked until it is (or it expires, or is cancelled): the GPUs that
free up wait for it.

Concurrency: one dispatcher runs at a time (a PostgreSQL advisory lock; a dispatch asked for while
one runs makes the running one go round again), and each request is claimed by a conditional
UPDATE inside the transaction that books it, so however many workers race, a request is booked at
most once; the exclusion constraint keeps any two leases off one GPU.

Speed: a run of on-demand requests for named regions at the head of a batch is booked together
in one statement (_book_together, booking.py's leases_book_on_demand), up to the first refused;
that one, and every reserved or any-region request, is booked alone (_claim_and_book).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mass_mail
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import AuditEntry, Organization, SshKey, User
from accounts.services.audit import audit_entry, audit_record
from clusters.choices import DemandReason, LeaseKind, LeaseRequestState
from clusters.models import Lease, LeaseRequest, Region
from clusters.selectors.capacity import Window, gpus_held_at_peak, is_valid_size, pools_for
from clusters.selectors.lease_requests import gpus_queued
from clusters.selectors.offerings import ceil_to_step
from clusters.services.booking import OnDemandBooking, lease_book, leases_book_on_demand, lost_race
from clusters.services.capacity import capacity_freed
from clusters.services.demand import demand_record
from clusters.services.lease_keys import keys_for_booking
from clusters.services.lifecycle import owner_emails
from clusters.services.refusals import InvalidState, NoCapacity, QuotaExceeded
from core.durations import duration_words
from core.refusals import Refused

# pg_advisory_lock key of the dispatcher: "vp" "lr" in ASCII, any constant unique to this lock.
DISPATCH_LOCK = 0x76706C72
AGAIN_KEY = "clusters:lease-requests:dispatch-again"
# Requests per dispatch transaction. Booked together (_book_together) a batch takes about as long
# as 50 booked one by one did, holding its organizations' locks as long; the booking checks run
# once per organization and attempt in it, so a larger batch runs them fewer times.
DISPATCH_BATCH = 200


def lease_request_create(
    *,
    user: User,
    organization: Organization,
    gpus: int,
    kind: str,
    hours: int | None = None,
    region: Region | None = None,
    not_after: datetime | None = None,
    ssh_keys: Sequence[SshKey] = (),
) -> LeaseRequest:
    """Queue a request for `gpus` GPUs (reserved for `hours`, or on-demand) in `region` or any.

    Its GPUs count against the organization's quota from now until it could end, with what the
    organization holds and has queued already.
    """
    now = timezone.now()
    not_after = not_after or now + timedelta(hours=settings.LEASE_REQUEST_DEFAULT_WAIT_HOURS)
    _check_request(gpus=gpus, kind=kind, hours=hours, not_after=not_after, now=now)
    ssh_keys = keys_for_booking(user=user, ssh_keys=ssh_keys)
    with transaction.atomic():
        organization = Organization.objects.select_for_update(no_key=True).get(pk=organization.pk)
        _check_quota(organization, gpus=gpus, hours=hours, not_after=not_after, now=now)
        request = LeaseRequest.objects.create(
            organization=organization,
            requested_by=user,
            region=region,
            gpus=gpus,
            kind=kind,
            hours=hours,
            not_after=not_after,
        )
        request.ssh_keys.set(ssh_keys)
        audit_record(
            actor=user,
            action="lease_request.create",
            obj=request,
            organization=organization,
            after=_snapshot(request),
        )
        capacity_freed()  # it may fit right away
    return request


def _check_request(*, gpus: int, kind: str, hours: int | None, not_after: datetime, now: datetime) -> None:
    errors: dict[str, str] = {}
    if not is_valid_size(gpus):
        errors["gpus"] = "Ask for 1, 2, 4 or 8 GPUs on one node, or a multiple of 8 (whole nodes) above 8."
    if kind == LeaseKind.RESERVED:
        errors.update(_hours_errors(hours))
    elif hours is not None:
        errors["hours"] = "An on-demand lease runs until released: leave the hours out."
    if not_after <= now:
        errors["not_after"] = "The latest time to book it must be in the future."
    elif not_after > now + settings.BOOKING_MAX_AHEAD:
        errors["not_after"] = f"A request may wait at most {duration_words(settings.BOOKING_MAX_AHEAD)}."
    if errors:
        raise ValidationError(errors)


def _hours_errors(hours: int | None) -> dict[str, str]:
    if hours is None:
        return {"hours": "A reserved lease needs its length in hours."}
    # Compared in seconds: timedelta() of a huge number of hours overflows.
    if hours * 3600 > settings.BOOKING_MAX_DURATION.total_seconds():
        return {"hours": f"A lease lasts at most {duration_words(settings.BOOKING_MAX_DURATION)}."}
    if timedelta(hours=hours) < settings.BOOKING_MIN_DURATION:
        return {"hours": f"A lease lasts at least {duration_words(settings.BOOKING_MIN_DURATION)}."}
    return {}


def _check_quota(
    organization: Organization, *, gpus: int, hours: int | None, not_after: datetime, now: datetime
) -> None:
    """Whatever the request is booked as, it ends by not_after + hours (an on-demand one, never)."""
    end = not_after + timedelta(hours=hours) if hours is not None else None
    held = gpus_held_at_peak(organization=organization, window=Window(start=now, end=end))
    queued = gpus_queued(organization)
    if held + queued + gpus > organization.gpu_quota:
        raise QuotaExceeded(quota=organization.gpu_quota, gpus_held=held, gpus=gpus, gpus_queued=queued)


def _snapshot(request: LeaseRequest) -> dict[str, object]:
    return {
        "state": request.state,
        "gpus": request.gpus,
        "kind": request.kind,
        "hours": request.hours,
        "region": request.region.code if request.region else None,
        "not_after": request.not_after.isoformat(),
        "lease": str(request.lease.public_id) if request.lease else None,
    }


@transaction.atomic
def lease_request_cancel(*, user: User, request: LeaseRequest) -> LeaseRequest:
    """Take a queued request out of the queue."""
    changed = LeaseRequest.objects.filter(pk=request.pk, state=LeaseRequestState.QUEUED).update(
        state=LeaseRequestState.CANCELLED, decided_at=timezone.now()
    )
    request.refresh_from_db()
    if changed != 1:
        raise InvalidState(f"Only a queued request can be cancelled; this one is {request.state}.")
    _left_queue_audit(request, "lease_request.cancel", actor=user).save()
    capacity_freed()  # a request that held the GPUs freeing up for it no longer does
    return request


def lease_request_book(*, request: LeaseRequest, region: Region, now: datetime | None = None) -> Lease | None:
    """Book one queued request in `region` now, or None: it does not fit (yet), or it is no longer queued.

    The conditional UPDATE claims the request in the booking's transaction: a second worker booking
    the same request waits for the first to commit, then finds it booked and changes nothing; a
    refusal rolls the claim back and the request stays queued. Claimed first, its GPUs are no longer
    queued when booking checks the quota, so they are not counted twice.
    """
    try:
        return _claim_and_book(request, region, now or timezone.now())
    except NoCapacity:
        return None


def _claim_and_book(request: LeaseRequest, region: Region, now: datetime) -> Lease | None:
    """As lease_request_book, but a refusal for want of capacity is raised (the dispatcher learns from it)."""
    try:
        with transaction.atomic():
            claimed = LeaseRequest.objects.filter(
                pk=request.pk, state=LeaseRequestState.QUEUED, not_after__gt=now
            ).update(state=LeaseRequestState.BOOKED, decided_at=now)
            if claimed != 1:
                return None
            lease = _book(request, region, now)
            LeaseRequest.objects.filter(pk=request.pk).update(lease=lease)
            request.state, request.lease, request.decided_at = LeaseRequestState.BOOKED, lease, now
            _left_queue_audit(request, "lease_request.book").save()
            return lease
    except NoCapacity:
        raise
    except (Refused, ValidationError):
        # Any other refusal (the quota, no price, billing's 402s) leaves it queued and blocks no one
        # behind it. ValidationError: the one who asked has deleted every key since (their keys
        # are the default).
        return None
    except OperationalError as error:
        # A deadlock on the claim: another worker booking this request waits for an organization
        # or node this dispatch holds. Its booking goes on; this one leaves the request to it.
        if not lost_race(error):
            raise
        return None


def _book(request: LeaseRequest, region: Region, now: datetime) -> Lease:
    """What the request asks for, booked now: a reserved lease from the next minute, or on-demand."""
    start = end = None
    if request.kind == LeaseKind.RESERVED:
        assert request.hours is not None
        start = ceil_to_step(now)
        end = start + timedelta(hours=request.hours)
    return lease_book(
        user=request.requested_by,
        organization=request.organization,
        region=region,
        gpus=request.gpus,
        kind=request.kind,
        start=start,
        end=end,
        ssh_keys=list(request.ssh_keys.all()),
        from_queue=True,
    )


def _email_booked(requests: list[LeaseRequest]) -> None:
    """One email per booked request, to the one who asked and the organization's owners."""
    owners = owner_emails(request.organization_id for request in requests)
    messages = []
    for request in requests:
        lease = request.lease
        assert lease is not None
        link = f"{settings.SITE_URL.rstrip('/')}/leases/{lease.public_id}/"
        window = f"from {lease.start:%Y-%m-%d %H:%M} UTC" + (
            f" to {lease.end:%Y-%m-%d %H:%M} UTC" if lease.end else ", until you release it"
        )
        body = (
            f"Your queued request for {request.gpus} GPUs was booked: lease {lease.public_id}, "
            f"{lease.gpus} GPUs in {lease.region.code} {window}.\n\nIts nodes and SSH commands: {link}\n"
        )
        recipients = sorted({request.requested_by.email, *owners.get(request.organization_id, [])})
        messages.append(("Voltpark: your queued GPUs are booked", body, None, recipients))
    send_mass_mail(messages, fail_silently=True)


def _email_expired(requests: list[LeaseRequest]) -> None:
    owners = owner_emails(request.organization_id for request in requests)
    messages = []
    for request in requests:
        body = (
            f"Your queued request for {request.gpus} GPUs "
            f"({request.region.code if request.region else 'any region'}) was not booked by "
            f"{request.not_after:%Y-%m-%d %H:%M} UTC and has expired; nothing is billed for it.\n"
            "Ask for capacity offerings to see the earliest windows that can be booked.\n"
        )
        recipients = sorted({request.requested_by.email, *owners.get(request.organization_id, [])})
        messages.append(("Voltpark: your queued request expired", body, None, recipients))
    send_mass_mail(messages, fail_silently=True)


@dataclass
class DispatchReport:
    """What dispatching the queue did."""

    booked: list[str] = field(default_factory=list)  # lease request public ids
    expired: int = 0
    waiting: int = 0
    held: list[str] = field(default_factory=list)  # region codes held for a request passed over too often


def lease_requests_dispatch(*, now: datetime | None = None) -> DispatchReport | None:
    """Expire what is past its not_after, then book what fits, in the fair order.

    None: another dispatcher is running; it goes round again for this call.
    """
    report = DispatchReport()
    while True:
        if not _try_lock():
            cache.set(AGAIN_KEY, 1, timeout=3600)
            # Set before trying again: if the runner released in between, this call runs itself;
            # if not, the runner has not yet looked for the flag (it does after releasing).
            if not _try_lock():
                return None
        try:
            cache.delete(AGAIN_KEY)
            at = now or timezone.now()
            report.expired += lease_requests_expire(now=at)
            _dispatch_once(report, at)
        finally:
            _unlock()
        if not cache.delete(AGAIN_KEY):
            return report


def _try_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [DISPATCH_LOCK])
        return bool(cursor.fetchone()[0])


def _unlock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [DISPATCH_LOCK])


def _dispatch_once(report: DispatchReport, now: datetime) -> None:
    regions = list(Region.objects.order_by("code"))
    queue = list(
        LeaseRequest.objects.filter(state=LeaseRequestState.QUEUED, not_after__gt=now)
        .select_related("organization", "region", "requested_by")
        .prefetch_related("ssh_keys")
        .order_by("created_at", "pk")
    )
    held: set[int] = set()
    # (region, kind, hours, pools) -> the fewest GPUs refused for want of capacity this dispatch
    refused: dict[tuple[int, str, int | None, tuple[str, ...]], int] = {}
    waiting: list[tuple[LeaseRequest, list[Region]]] = []
    passed_over: set[int] = set()
    for start in range(0, len(queue), DISPATCH_BATCH):
        booked: list[LeaseRequest] = []
        pending = queue[start : start + DISPATCH_BATCH]
        # A batch commits together: one commit per DISPATCH_BATCH bookings instead of one each,
        # and one email connection. Runs of on-demand requests are booked together in one
        # statement; the one a run stops at, and any other, alone, each in its own savepoint.
        with transaction.atomic():
            while pending:
                run = _bookable_together(pending, held, refused)
                together, taken, stopped = _book_together(run, now) if run else ([], [], False)
                for request in together:
                    booked.append(request)
                    assert request.region is not None
                    passed_over.update(w.pk for w, w_regions in waiting if request.region in w_regions)
                waiting += [(request, [request.region]) for request in taken if request.region is not None]
                pending = pending[len(together) + len(taken) :]
                if run and not stopped:
                    continue
                request = pending.pop(0)
                wanted = [request.region] if request.region is not None else regions
                region = _book_somewhere(request, wanted, held, refused, now)
                if region is not None:
                    booked.append(request)
                    passed_over.update(w.pk for w, w_regions in waiting if region in w_regions)
                    continue
                waiting.append((request, wanted))
                if request.passed_over >= settings.LEASE_REQUEST_BACKFILL_LIMIT:
                    held.update(r.pk for r in wanted)
                    report.held += [r.code for r in wanted]
            transaction.on_commit(partial(_email_booked, booked))
        report.booked += [str(request.public_id) for request in booked]
    report.waiting += len(waiting)
    if passed_over:
        LeaseRequest.objects.filter(pk__in=passed_over, state=LeaseRequestState.QUEUED).update(
            passed_over=F("passed_over") + 1
        )


def _bookable_together(
    pending: list[LeaseRequest],
    held: set[int],
    refused: dict[tuple[int, str, int | None, tuple[str, ...]], int],
) -> list[LeaseRequest]:
    """The requests at the head of the queue that can be booked together: on-demand, in one named
    region that is not held, of a size not refused this dispatch (as _book_somewhere skips)."""
    run = []
    for request in pending:
        region = request.region
        if request.kind != LeaseKind.ON_DEMAND or region is None or region.pk in held:
            break
        key = (region.pk, request.kind, request.hours, tuple(pools_for(request.organization)))
        if request.gpus >= refused.get(key, math.inf):
            break
        run.append(request)
    return run


def _book_together(
    run: list[LeaseRequest], now: datetime
) -> tuple[list[LeaseRequest], list[LeaseRequest], bool]:
    """Book a run of on-demand requests in one statement (leases_book_on_demand), in order.

    Answers the requests booked and those another worker had claimed (or is claiming), which are
    the head of the run, and whether the run stopped before its end: then the request after them
    was not booked (refused, or a GPU lost to another writer) and is queued again, for the caller
    to book alone, which says why. Each request is claimed in the transaction that books it, as
    in _claim_and_book: locked if still queued (skipping one another worker has locked), then
    marked booked.
    """
    try:
        return _book_run(run, now)
    except (IntegrityError, OperationalError) as error:
        # A deadlock with another writer (a direct booking holding an organization while it waits
        # for a node this dispatch holds): nothing of the run stands; its head is booked alone.
        if not lost_race(error):
            raise
        return [], [], True


def _book_run(run: list[LeaseRequest], now: datetime) -> tuple[list[LeaseRequest], list[LeaseRequest], bool]:
    with transaction.atomic():
        # SKIP LOCKED: a request another worker is booking right now is left to it (waiting for it
        # could deadlock with the organizations and nodes this dispatch already holds).
        claimed = set(
            LeaseRequest.objects.filter(
                pk__in=[request.pk for request in run], state=LeaseRequestState.QUEUED, not_after__gt=now
            )
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        LeaseRequest.objects.filter(pk__in=claimed).update(state=LeaseRequestState.BOOKED, decided_at=now)
        mine = [request for request in run if request.pk in claimed]
        leases = leases_book_on_demand(bookings=[_on_demand_booking(request) for request in mine])
        together = mine[: len(leases)]
        for request, lease in zip(together, leases, strict=True):
            request.state, request.lease, request.decided_at = LeaseRequestState.BOOKED, lease, now
        LeaseRequest.objects.bulk_update(together, ["lease"])
        # Claimed but not booked: back in the queue, as a refusal leaves a request booked alone.
        LeaseRequest.objects.filter(pk__in=[r.pk for r in mine[len(leases) :]]).update(
            state=LeaseRequestState.QUEUED, decided_at=None
        )
        AuditEntry.objects.bulk_create(
            _left_queue_audit(request, "lease_request.book") for request in together
        )
    head = run[: run.index(mine[len(leases)])] if len(leases) < len(mine) else run
    taken = [request for request in head if request.pk not in claimed]
    return together, taken, len(head) < len(run)


def _on_demand_booking(request: LeaseRequest) -> OnDemandBooking:
    assert request.region is not None
    return OnDemandBooking(
        user=request.requested_by,
        organization=request.organization,
        region=request.region,
        gpus=request.gpus,
        ssh_keys=list(request.ssh_keys.all()),
    )


def _left_queue_audit(request: LeaseRequest, action: str, *, actor: User | None = None) -> AuditEntry:
    """The audit row of a request leaving `queued` (booked, cancelled or expired), not yet saved."""
    return audit_entry(
        actor=actor,
        action=action,
        obj=request,
        organization=request.organization,
        before={"state": LeaseRequestState.QUEUED},
        after=_snapshot(request),
    )


def _book_somewhere(
    request: LeaseRequest,
    wanted: list[Region],
    held: set[int],
    refused: dict[tuple[int, str, int | None, tuple[str, ...]], int],
    now: datetime,
) -> Region | None:
    """The region the request was booked in, trying its regions in order; None if none fits now."""
    pools = tuple(pools_for(request.organization))
    for region in wanted:
        key = (region.pk, request.kind, request.hours, pools)
        # Capacity only shrinks during a dispatch: a size that found no room in these pools for
        # this length does not find it for another request either, nor does a larger one.
        if region.pk in held or request.gpus >= refused.get(key, math.inf):
            continue
        try:
            if _claim_and_book(request, region, now) is not None:
                return region
        except NoCapacity:
            refused[key] = min(refused.get(key, request.gpus), request.gpus)
    return None


def lease_requests_expire(*, now: datetime) -> int:
    """Requests past their not_after expire, recorded as demand; their owners are told."""
    expired = 0
    with transaction.atomic():
        due = list(
            LeaseRequest.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=LeaseRequestState.QUEUED, not_after__lte=now)
            .select_related("organization", "region", "requested_by")
        )
        for request in due:
            LeaseRequest.objects.filter(pk=request.pk).update(state=LeaseRequestState.EXPIRED, decided_at=now)
            request.state = LeaseRequestState.EXPIRED
            demand_record(
                organization=request.organization,
                region=request.region,
                reason=DemandReason.REQUEST_EXPIRED,
                kind=request.kind,
                gpus=request.gpus,
                start=request.created_at,
                end=request.created_at + timedelta(hours=request.hours) if request.hours else None,
            )
            _left_queue_audit(request, "lease_request.expire").save()
            expired += 1
        transaction.on_commit(lambda: _email_expired(due))
    return expired
