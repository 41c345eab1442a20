"""Demand turned away, recorded for staff: refused bookings and queued requests that expired."""

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from accounts.models import Organization
from clusters.models import DemandRecord, Region

# An on-demand lease has no length when it is refused; it counts as one hour of demand.
ON_DEMAND_HOURS = timedelta(hours=1)


def demand_record(
    *,
    organization: Organization,
    region: Region | None,
    reason: str,
    kind: str,
    gpus: int,
    start: datetime,
    end: datetime | None,
) -> DemandRecord:
    """Record unmet demand in the caller's transaction (a refusal rolled back with it is not demand)."""
    length = (end - start) if end is not None else ON_DEMAND_HOURS
    hours = Decimal(length.total_seconds()) / 3600
    return DemandRecord.objects.create(
        organization=organization,
        region=region,
        reason=reason,
        kind=kind,
        gpus=gpus,
        start=start,
        gpu_hours=(gpus * hours).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP),
    )
