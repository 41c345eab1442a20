"""Named states and kinds of the fleet and of leases."""

from django.db import models


class Pool(models.TextChoices):
    GENERAL = "general", "General"
    EARLY_STAGE = "early_stage", "Early-stage"


class NodeState(models.TextChoices):
    AVAILABLE = "available", "Available"
    DRAINING = "draining", "Draining"
    MAINTENANCE = "maintenance", "Maintenance"
    UNHEALTHY = "unhealthy", "Unhealthy"
    OFFLINE = "offline", "Offline"


class GpuHealth(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    FAILED = "failed", "Failed"


class LeaseKind(models.TextChoices):
    RESERVED = "reserved", "Reserved"
    ON_DEMAND = "on_demand", "On-demand"


class LeaseState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


LIVE_LEASE_STATES = (LeaseState.SCHEDULED, LeaseState.ACTIVE)
GPUS_PER_NODE = 8
SINGLE_NODE_SIZES = (1, 2, 4, 8)


class HealthEventKind(models.TextChoices):
    UNREACHABLE = "unreachable", "Agent unreachable"
    XID = "xid", "XID critical error"
    ECC = "ecc", "Uncorrectable ECC errors"
    OVERHEAT = "overheat", "Temperature above the limit"
    GPU_MISSING = "gpu_missing", "GPU missing"


class LeaseNoticeKind(models.TextChoices):
    ENDING_60 = "ending_60", "Ends in 60 minutes"
    ENDING_10 = "ending_10", "Ends in 10 minutes"
    REPLACEMENT = "replacement", "A node failed: replacement booked or offered"


class LeaseRequestState(models.TextChoices):
    """A queued request waits until it is booked, it passes its `not_after`, or its owner cancels it."""

    QUEUED = "queued", "Queued"
    BOOKED = "booked", "Booked"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class DemandReason(models.TextChoices):
    """Why demand went unmet."""

    NO_CAPACITY = "no_capacity", "No capacity"
    QUOTA_EXCEEDED = "quota_exceeded", "Over quota"
    REQUEST_EXPIRED = "request_expired", "Queued request expired"
