"""Why a lease service refused: each carries its code, its status and what the API reports with it."""

from collections.abc import Sequence
from datetime import datetime

from django.urls import NoReverseMatch, reverse

from clusters.models import Region
from clusters.selectors.offerings import Offering
from core.refusals import Refused


class BookingRefused(Refused):
    """A lease change the booking rules do not allow."""


class QuotaExceeded(BookingRefused):
    code = "quota_exceeded"
    status = 403
    field = "gpus"

    def __init__(self, *, quota: int, gpus_held: int, gpus: int, gpus_queued: int = 0) -> None:
        queued = f" and has {gpus_queued} queued" if gpus_queued else ""
        super().__init__(
            f"This lease would hold {gpus_held + gpus_queued + gpus} GPUs at once; your organization's quota "
            f"is {quota} and it already holds {gpus_held} in that window{queued}.",
            quota=quota,
            gpus_held=gpus_held,
            gpus_queued=gpus_queued,
            # Where an owner asks for more (the quota requests live above clusters, found by name).
            quota_request_url=_url_or_none("api-quota-requests"),
        )
        self.quota, self.gpus_held, self.gpus_queued = quota, gpus_held, gpus_queued


class NoCapacity(BookingRefused):
    """Not enough free GPUs; carries a way forward: the nearest offerings, the regions free now."""

    code = "no_capacity"
    field = "gpus"

    def __init__(
        self,
        *,
        gpus: int,
        max_gpus_available: int,
        offerings: Sequence[Offering] = (),
        regions_free_now: Sequence[Region] = (),
        on_demand_until: Sequence[tuple[Region, datetime]] = (),
    ) -> None:
        detail = (
            f"{gpus} GPUs cannot be placed in this region for that window; "
            f"the largest lease that fits is {max_gpus_available} GPUs."
        )
        if offerings:
            first = offerings[0]
            detail += (
                f" The nearest window that can be booked: {first.region.code} from "
                f"{first.start:%Y-%m-%d %H:%M} to {first.end:%Y-%m-%d %H:%M} UTC."
            )
        if on_demand_until:
            region, until = on_demand_until[0]
            detail += (
                f" On-demand can run now in {region.code} until {until:%Y-%m-%d %H:%M} UTC "
                "(book it with that end)."
            )
        super().__init__(
            detail,
            max_gpus_available=max_gpus_available,
            offerings=[offering.as_json() for offering in offerings],
            regions_free_now=[region.code for region in regions_free_now],
            on_demand_until=[
                {"region": region.code, "end": until.isoformat()} for region, until in on_demand_until
            ],
        )
        self.gpus, self.max_gpus_available = gpus, max_gpus_available
        self.offerings, self.regions_free_now = list(offerings), list(regions_free_now)


class NotExtendable(BookingRefused):
    code = "not_extendable"
    field = "end"

    def __init__(self, *, free_until: datetime) -> None:
        super().__init__(
            f"The lease's GPUs are booked by someone else from {free_until.isoformat()}; "
            "it can be extended up to then.",
            free_until=free_until.isoformat(),
        )
        self.free_until = free_until


class InvalidState(BookingRefused):
    code = "invalid_state"


def _url_or_none(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None
