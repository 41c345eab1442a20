"""A lively demo: leases running on the simulated fleet, an early-stage application waiting,
and last month closed with invoices. Every step is idempotent, so `make demo` may run it again."""

import base64
import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services.organizations import organization_create
from accounts.services.ssh_keys import ssh_key_add
from billing.choices import PaymentTerms
from billing.models import MonthClose
from billing.selectors.balance import account_of
from billing.services.accounts import account_set_terms
from billing.services.invoicing import CloseResult, month_close
from billing.services.top_ups import top_up_record
from clusters.choices import LIVE_LEASE_STATES, LeaseKind, LeaseState, NodeState, Pool
from clusters.models import GPU, Allocation, Lease, PriceBookEntry, Region
from clusters.selectors.prices import price_for
from clusters.services.booking import lease_book
from clusters.services.fleet import PRICES_FROM
from core.periods import previous_month
from programs.models import EarlyStageApplication
from programs.services.early_stage import early_stage_apply


@dataclass(frozen=True)
class PastLease:
    """A lease of last month, written as booking and the run time would have left it."""

    region: str
    gpus: int
    kind: str
    day: int
    hours: int


RUNNING = [
    ("us-tx-1", 8, LeaseKind.ON_DEMAND),
    ("us-va-1", 4, LeaseKind.RESERVED),
    ("us-wa-1", 2, LeaseKind.ON_DEMAND),
]


PAST = {
    "acme-ai": [
        PastLease("us-tx-1", 8, LeaseKind.ON_DEMAND, 3, 72),
        PastLease("us-va-1", 4, LeaseKind.ON_DEMAND, 12, 30),
    ],
    "nebula-labs": [PastLease("us-wa-1", 2, LeaseKind.ON_DEMAND, 20, 16)],
}


# Each region's own price book: on-demand, and reserved by term (any length, a week or more, 30 days or more).
REGION_PRICES = {
    "us-tx-1": ("2.2900", ("1.9900", "1.8900", "1.7900")),
    "us-va-1": ("2.5900", ("2.2900", "2.1900", "2.0900")),
    "us-wa-1": ("2.3900", ("2.0900", "1.9900", "1.8900")),
}
TERM_HOURS = (0, 7 * 24, 30 * 24)


def demo_prices() -> None:
    """Distinct prices per region, with reserved term tiers (idempotent)."""
    for code, (on_demand, reserved) in REGION_PRICES.items():
        region = Region.objects.get(code=code)
        rows = [(LeaseKind.ON_DEMAND, 0, on_demand)] + [
            (LeaseKind.RESERVED, hours, price) for hours, price in zip(TERM_HOURS, reserved, strict=True)
        ]
        for kind, hours, price in rows:
            PriceBookEntry.objects.get_or_create(
                kind=kind,
                region=region,
                min_hours=hours,
                effective_from=PRICES_FROM,
                defaults={"price_per_gpu_hour": Decimal(price)},
            )


def demo_money() -> None:
    """Acme AI pays on invoice terms (net 30); Nebula Labs is prepaid with a top-up, as a startup is."""
    acme = Organization.objects.get(slug="acme-ai")
    if account_of(acme).terms != PaymentTerms.INVOICED:
        account_set_terms(
            actor=None, organization=acme, terms=PaymentTerms.INVOICED, credit_limit=Decimal(50_000)
        )
    nebula = Organization.objects.get(slug="nebula-labs")
    top_up_record(
        organization=nebula,
        amount=Decimal("500.00"),
        external_id="demo-nebula-first-top-up",
        description="Demo top-up (a bank transfer recorded by staff)",
        at=previous_month() - timedelta(days=2),
    )


def demo_ssh_key(user: User) -> None:
    """A public key for a demo person who has none (booking needs one): well-formed, made from the
    address; nobody holds its private half, as nobody logs in to the simulated nodes."""
    if user.ssh_keys.exists():
        return

    def field(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    blob = field(b"ssh-ed25519") + field(hashlib.sha256(user.email.encode()).digest())
    ssh_key_add(
        user=user, name="demo laptop", public_key=f"ssh-ed25519 {base64.b64encode(blob).decode()} demo"
    )


def demo_running_leases(*, organization: Organization, user: User) -> list[Lease]:
    """Book a few leases (booking service) when the organization has none live; the sweeper starts them."""
    if Lease.objects.filter(organization=organization, state__in=LIVE_LEASE_STATES).exists():
        return []
    start = (timezone.now() + timedelta(minutes=1)).replace(second=0, microsecond=0)
    booked = []
    for code, gpus, kind in RUNNING:
        end = start + timedelta(hours=8) if kind == LeaseKind.RESERVED else None
        region = Region.objects.get(code=code)
        booked.append(
            lease_book(
                user=user,
                organization=organization,
                region=region,
                gpus=gpus,
                kind=kind,
                start=start if end else None,
                end=end,
            )
        )
    return booked


def demo_startup_applying(*, founder: User) -> EarlyStageApplication:
    """Nebula Labs, owned by the founder, with an early-stage application waiting for staff."""
    organization = Organization.objects.filter(slug="nebula-labs").first()
    if organization is None:
        organization = organization_create(owner=founder, name="Nebula Labs")
    waiting = EarlyStageApplication.objects.filter(organization=organization).first()
    return waiting or early_stage_apply(
        actor=founder,
        organization=organization,
        what_we_build="Open weather models small enough to run on a laptop once trained.",
        stage="pre_seed",
        funding="$600k from a climate fund",
        gpus_wanted=32,
        why="Our first training run needs 32 GPUs for two weeks; we cannot sign a yearly contract.",
    )


def demo_closed_month(*, bookers: dict[str, User]) -> CloseResult | None:
    """Last month's usage (leases that ran then, on general nodes) and its close, once."""
    month = previous_month()
    if MonthClose.objects.filter(period_start=month).exists():
        return None
    with transaction.atomic():
        for slug, leases in PAST.items():
            organization = Organization.objects.get(slug=slug)
            for past in leases:
                _past_lease(organization, bookers[slug], month, past)
    return month_close(period_start=month)


def _past_lease(organization: Organization, user: User, month: datetime, past: PastLease) -> Lease:
    region = Region.objects.get(code=past.region)
    start = month + timedelta(days=past.day - 1, hours=9)
    end = start + timedelta(hours=past.hours)
    lease = Lease.objects.create(
        organization=organization,
        booked_by=user,
        region=region,
        gpus=past.gpus,
        kind=past.kind,
        start=start,
        end=end,
        state=LeaseState.ENDED,
        price_per_gpu_hour=price_for(kind=past.kind, region=region, at=start),
        started_at=start,
        ended_at=end,
        created_at=start - timedelta(days=1),
    )
    gpus = _free_gpus(region, past.gpus, start, end)
    Allocation.objects.bulk_create(
        Allocation(lease=lease, gpu=gpu, node_id=gpu.node_id, period=DateTimeTZRange(start, end, "[)"))
        for gpu in gpus
    )
    return lease


def _free_gpus(region: Region, count: int, start: datetime, end: datetime) -> list[GPU]:
    busy = Allocation.objects.filter(is_live=True, period__overlap=DateTimeTZRange(start, end, "[)"))
    gpus = GPU.objects.filter(
        node__cluster__region=region, node__pool=Pool.GENERAL, node__state=NodeState.AVAILABLE
    ).exclude(pk__in=busy.values("gpu_id"))
    return list(gpus.order_by("node__hostname", "index")[:count])
