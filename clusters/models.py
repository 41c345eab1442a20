"""The fleet (regions, clusters, nodes, GPUs), the leases that hold its GPUs, and their prices."""

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.contrib.postgres.indexes import GistIndex
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clusters.choices import (
    DemandReason,
    GpuHealth,
    HealthEventKind,
    LeaseKind,
    LeaseNoticeKind,
    LeaseRequestState,
    LeaseState,
    NodeState,
    Pool,
)
from core.db import PublicIdModel


class Region(models.Model):
    """A data-center region, such as us-tx-1 in Texas."""

    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    us_state = models.CharField(max_length=40)

    def __str__(self) -> str:
        return self.code


class Cluster(models.Model):
    """One InfiniBand fabric inside a region; leases above 8 GPUs stay inside one."""

    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="clusters")
    name = models.SlugField(max_length=40, unique=True)

    def __str__(self) -> str:
        return self.name


class Node(PublicIdModel):
    """An eight-GPU HGX server with a node agent, in one pool and one state."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="nodes")
    hostname = models.CharField(max_length=100, unique=True)
    pool = models.CharField(max_length=20, choices=Pool, default=Pool.GENERAL)
    state = models.CharField(max_length=20, choices=NodeState, default=NodeState.AVAILABLE)
    state_reason = models.CharField(max_length=200, blank=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    agent_url = models.URLField(max_length=300, blank=True)
    agent_token_encrypted = models.TextField(blank=True, help_text="Fernet-encrypted bearer token.")
    gpu_model = models.CharField(max_length=60, default="NVIDIA H100 80GB HBM3")
    # Run time: reachability of the agent, and when an admin last returned the node to service.
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="Last answer from the agent.")
    unreachable_sweeps = models.PositiveIntegerField(default=0, help_text="Polls missed in a row.")
    undrained_at = models.DateTimeField(
        null=True, blank=True, help_text="Errors the agent reported before this were dealt with by an admin."
    )

    class Meta:
        indexes = [models.Index(fields=["pool", "state"], name="node_pool_state")]

    def __str__(self) -> str:
        return self.hostname


class GPU(models.Model):
    """One GPU of a node, with its health."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="gpus")
    index = models.PositiveSmallIntegerField()
    uuid = models.CharField(max_length=64, unique=True)
    health = models.CharField(max_length=20, choices=GpuHealth, default=GpuHealth.HEALTHY)
    needs_cleanup = models.BooleanField(
        default=False, help_text="A lease ended here and the agent has not yet reported the GPU clean."
    )
    # Run time: the latest NVML reading, written in bulk by every poll.
    read_at = models.DateTimeField(null=True, blank=True)
    utilization_pct = models.PositiveSmallIntegerField(null=True, blank=True)
    memory_used_bytes = models.BigIntegerField(null=True, blank=True)
    memory_total_bytes = models.BigIntegerField(null=True, blank=True)
    temperature_c = models.SmallIntegerField(null=True, blank=True)
    power_draw_w = models.FloatField(null=True, blank=True)
    power_limit_w = models.FloatField(null=True, blank=True)
    ecc_uncorrectable = models.IntegerField(null=True, blank=True, help_text="Volatile uncorrectable ECC.")
    last_xid_code = models.IntegerField(null=True, blank=True)
    last_xid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "GPU"
        constraints = [
            models.UniqueConstraint(fields=["node", "index"], name="gpu_index_once_per_node"),
            models.CheckConstraint(condition=Q(index__lte=7), name="gpu_index_0_to_7"),
        ]
        # Placement subtracts the few GPUs that cannot take a lease; this keeps finding them cheap.
        indexes = [
            models.Index(
                fields=["node"],
                condition=~Q(health=GpuHealth.HEALTHY) | Q(needs_cleanup=True),
                name="gpu_unplaceable",
            )
        ]

    def __str__(self) -> str:
        return f"{self.node.hostname}/{self.index}"


class Lease(PublicIdModel):
    """An organization's hold on GPUs: a reserved window, or on-demand until released."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="leases")
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="leases")
    gpus = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=LeaseKind)
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True, help_text="Empty while an on-demand lease runs.")
    state = models.CharField(max_length=20, choices=LeaseState, default=LeaseState.SCHEDULED)
    price_per_gpu_hour = models.DecimalField(max_digits=10, decimal_places=4)
    currency = models.CharField(max_length=3, default="USD")
    ssh_keys = models.ManyToManyField("accounts.SshKey", blank=True, related_name="leases")
    ssh_public_keys = models.JSONField(default=list, help_text="The key lines installed at start.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    state_reason = models.CharField(max_length=200, blank=True)
    health_flagged = models.BooleanField(default=False, help_text="A node of this lease turned unhealthy.")
    replace_automatically = models.BooleanField(
        default=False,
        db_default=False,  # rows written outside Django (COPY in the benchmarks, raw SQL) need no value
        help_text="If a node fails while it runs, book a replacement at once (else offer one).",
    )
    replaces = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replacements",
        help_text="The lease on a failed node this one was booked to replace.",
    )

    class Meta:
        indexes = [
            models.Index(fields=["organization", "state"], name="lease_org_state"),
            models.Index(fields=["state", "start"], name="lease_state_start"),
            models.Index(fields=["state", "end"], name="lease_state_end"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(gpus__gte=1), name="lease_gpus_positive"),
            models.CheckConstraint(
                condition=Q(end__isnull=True) | Q(end__gt=models.F("start")), name="lease_end_after_start"
            ),
            models.CheckConstraint(
                condition=~Q(kind=LeaseKind.RESERVED) | Q(end__isnull=False), name="lease_reserved_has_end"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.gpus}× {self.region} {self.kind} ({self.state})"


class Allocation(models.Model):
    """One GPU held by a lease over the lease's period; the source of truth for usage.

    A live allocation's period may not overlap another live one on the same GPU: the
    exclusion constraint makes a double booking impossible whatever the code does.
    Cancelled and failed leases keep their rows for history with `is_live` off.
    """

    lease = models.ForeignKey(Lease, on_delete=models.CASCADE, related_name="allocations")
    gpu = models.ForeignKey(GPU, on_delete=models.PROTECT, related_name="allocations")
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="allocations")
    period = DateTimeRangeField(help_text="[start, end); open above while on-demand runs.")
    is_live = models.BooleanField(default=True)
    # The node's region, kept here so that placement and availability scan one region's
    # allocations (index allocation_region_period) instead of every region's. A database
    # trigger (migration 0004) sets it from the node on every insert and keeps it right when a
    # node or cluster moves, whatever the writer: code need not (and cannot usefully) set it.
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, related_name="+", editable=False, db_index=False
    )

    class Meta:
        constraints = [
            ExclusionConstraint(
                name="allocation_no_double_booking",
                expressions=[("gpu", RangeOperators.EQUAL), ("period", RangeOperators.OVERLAPS)],
                condition=Q(is_live=True),
            )
        ]
        indexes = [
            GistIndex(fields=["period"], name="allocation_period_gist"),
            # Covering (index-only scans): the busy GPUs of one region in a window, without the heap.
            GistIndex(
                fields=["region", "period"],
                include=["node", "gpu"],
                condition=Q(is_live=True),
                name="allocation_region_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.gpu} for {self.lease_id}"


class GpuBookedUntil(models.Model):
    """When a GPU's last live booking ends: from then on it carries nothing, and on-demand can take it.

    Kept by database triggers (clusters/sql/booked_until.sql) on every write of allocations and
    GPUs, whoever the writer; code reads it and never writes it. `booked_until` is 'infinity'
    (read as datetime.max) while a lease with no end holds the GPU, '-infinity' (datetime.min) when
    it has no live allocation.
    """

    gpu = models.OneToOneField(GPU, on_delete=models.CASCADE, primary_key=True, related_name="booked_until")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+", db_index=False)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="+", db_index=False)
    booked_until = models.DateTimeField()

    class Meta:
        verbose_name = "GPU booked until"
        verbose_name_plural = "GPUs booked until"
        # Placement reads the region's GPUs booked until now at the latest: few on a busy fleet.
        indexes = [
            models.Index(fields=["region", "booked_until"], include=["node"], name="gpu_booked_until_region")
        ]

    def __str__(self) -> str:
        return f"{self.gpu_id} booked until {self.booked_until:%Y-%m-%d %H:%M}"


class HealthEvent(PublicIdModel):
    """A node (or one of its GPUs) failing a health rule, from when it began until it ended."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="health_events")
    gpu = models.ForeignKey(GPU, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=20, choices=HealthEventKind)
    detail = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Empty while the problem lasts.")
    leases = models.ManyToManyField(Lease, blank=True, related_name="health_events")

    class Meta:
        indexes = [models.Index(fields=["node", "ended_at"], name="health_event_node_open")]

    def __str__(self) -> str:
        return f"{self.node} {self.kind} from {self.started_at:%Y-%m-%d %H:%M}"


# --- Run time: telemetry samples, per-lease hourly summaries, ending notices.


class GpuSample(models.Model):
    """One GPU's reading at one moment, kept for TELEMETRY_RETENTION_DAYS for the customer's charts.

    The table is partitioned by day on `at` (migration 0009, clusters/services/partitions.py): a day
    past retention is dropped whole. The key (gpu, at) is Django's only: a unique index on a
    partitioned table would have had to be built over the whole old table by the migration, and the
    poller never stores one GPU twice at one instant.
    """

    pk = models.CompositePrimaryKey("gpu_id", "at")
    gpu = models.ForeignKey(GPU, on_delete=models.CASCADE, related_name="samples", db_index=False)
    at = models.DateTimeField()
    utilization_pct = models.PositiveSmallIntegerField(null=True)
    memory_used_bytes = models.BigIntegerField(null=True)
    temperature_c = models.SmallIntegerField(null=True)
    power_draw_w = models.FloatField(null=True)

    class Meta:
        # (gpu, at) serves the telemetry API inside each day's partition; retention needs no index.
        indexes = [models.Index(fields=["gpu", "at"], name="gpusample_gpu_at")]

    def __str__(self) -> str:
        return f"{self.gpu_id} at {self.at:%Y-%m-%d %H:%M:%S}"


class LeaseTelemetryHour(models.Model):
    """What a lease's GPUs did in one clock hour: mean utilization, peak memory, energy."""

    lease = models.ForeignKey(Lease, on_delete=models.CASCADE, related_name="telemetry_hours")
    hour = models.DateTimeField(help_text="The start of the UTC hour.")
    readings = models.PositiveIntegerField(default=0, help_text="GPU readings summed in this row.")
    utilization_sum = models.BigIntegerField(default=0)
    memory_peak_bytes = models.BigIntegerField(default=0)
    energy_wh = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lease", "hour"], name="lease_telemetry_hour_once")]

    def __str__(self) -> str:
        return f"{self.lease_id} {self.hour:%Y-%m-%d %H:00}"

    @property
    def mean_utilization_pct(self) -> float:
        return self.utilization_sum / self.readings if self.readings else 0.0


class PriceBookEntry(models.Model):
    """The price of a GPU-hour for a lease kind (in one region, or everywhere) from a date on, for leases
    of at least `min_hours` (a term price: 0 for any length, 168 for a week or more, 720 for 30 days)."""

    kind = models.CharField(max_length=20, choices=LeaseKind)
    region = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="prices",
        help_text="Empty: the price everywhere without a regional price.",
    )
    price_per_gpu_hour = models.DecimalField(
        max_digits=10, decimal_places=4, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default="USD")
    effective_from = models.DateTimeField(default=timezone.now)
    min_hours = models.PositiveIntegerField(
        default=0, help_text="The price applies to leases at least this many hours long (reserved)."
    )

    class Meta:
        verbose_name_plural = "price book entries"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "region", "min_hours", "effective_from"],
                name="price_once_per_kind_region_tier_instant",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=Q(min_hours=0) | Q(kind=LeaseKind.RESERVED), name="price_tiers_only_for_reserved"
            ),
        ]
        indexes = [models.Index(fields=["kind", "effective_from"], name="price_kind_from")]

    def __str__(self) -> str:
        where = self.region.code if self.region else "all regions"
        tier = f" for {self.min_hours} h or more" if self.min_hours else ""
        return (
            f"{self.kind} {where}{tier} ${self.price_per_gpu_hour}/GPU-h from {self.effective_from:%Y-%m-%d}"
        )


class LeaseNotice(models.Model):
    """A notice emailed to a lease's owners, recorded so that it is sent once."""

    lease = models.ForeignKey(Lease, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=20, choices=LeaseNoticeKind)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lease", "kind"], name="lease_notice_once")]

    def __str__(self) -> str:
        return f"{self.lease_id} {self.kind}"


class IdempotencyKey(models.Model):
    """A POST made with an Idempotency-Key header and the answer it got, replayed for duplicates."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="idempotency_key_once_per_org")
        ]
        # The purge deletes by age (clusters.services.idempotency); without it, a scan of the table.
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_at")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code})"


class DemandRecord(models.Model):
    """Demand turned away: a booking refused for want of capacity or quota, or a request that expired."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    region = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: any region.",
    )
    reason = models.CharField(max_length=20, choices=DemandReason)
    kind = models.CharField(max_length=20, choices=LeaseKind)
    gpus = models.PositiveIntegerField()
    start = models.DateTimeField(help_text="When the GPUs were wanted from.")
    gpu_hours = models.DecimalField(
        max_digits=14, decimal_places=3, help_text="GPUs × hours wanted; an on-demand lease counts one hour."
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["at"], name="demand_at")]

    def __str__(self) -> str:
        return f"{self.gpus} GPUs {self.reason} at {self.at:%Y-%m-%d %H:%M}"


class LeaseRequest(PublicIdModel):
    """GPUs asked for when none fit: booked, in a fair order, the moment capacity frees, or expired."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="lease_requests"
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    region = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: any region.",
    )
    gpus = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=LeaseKind)
    hours = models.PositiveIntegerField(null=True, blank=True, help_text="A reserved lease's length.")
    not_after = models.DateTimeField(help_text="Booked by then, or it expires.")
    state = models.CharField(max_length=20, choices=LeaseRequestState, default=LeaseRequestState.QUEUED)
    lease = models.OneToOneField(
        Lease,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="request",
        help_text="Once booked.",
    )
    ssh_keys = models.ManyToManyField("accounts.SshKey", blank=True, related_name="+")
    passed_over = models.PositiveIntegerField(
        default=0, help_text="Dispatches in which a request behind this one was booked first (backfill)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was booked, expired or cancelled."
    )

    class Meta:
        indexes = [
            models.Index(fields=["state", "created_at"], name="lease_request_queue"),
            models.Index(fields=["organization", "state"], name="lease_request_org_state"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(gpus__gte=1), name="lease_request_gpus_positive"),
            models.CheckConstraint(
                condition=Q(kind=LeaseKind.RESERVED, hours__gte=1)
                | Q(kind=LeaseKind.ON_DEMAND, hours__isnull=True),
                name="lease_request_hours_iff_reserved",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.gpus} GPUs {self.kind} ({self.state})"


class PoolShare(models.Model):
    """The share of a region's nodes staff keep in the early-stage pool; nodes move to it (or out
    of it) as they become free."""

    region = models.OneToOneField(
        Region, on_delete=models.CASCADE, primary_key=True, related_name="pool_share"
    )
    early_stage_share = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="0 to 1: the fraction of the region's nodes in the early-stage pool.",
    )
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    set_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(early_stage_share__gte=0, early_stage_share__lte=1), name="pool_share_0_to_1"
            )
        ]

    def __str__(self) -> str:
        return f"{self.region_id}: {self.early_stage_share:.0%} early-stage"
