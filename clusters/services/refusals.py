"""Why a booking service refused: each carries what the API reports with its code."""

from datetime import datetime


class BookingRefused(Exception):
    """A lease change the rules do not allow; `code` is the API's machine-readable reason."""

    code = "refused"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extra(self) -> dict[str, object]:
        return {}


class QuotaExceeded(BookingRefused):
    code = "quota_exceeded"

    def __init__(self, *, quota: int, gpus_held: int, gpus: int) -> None:
        super().__init__(
            f"This lease would hold {gpus_held + gpus} GPUs at once; your organization's quota is {quota} "
            f"and it already holds {gpus_held} in that window."
        )
        self.quota, self.gpus_held = quota, gpus_held

    def extra(self) -> dict[str, object]:
        return {"quota": self.quota, "gpus_held": self.gpus_held}


class NoCapacity(BookingRefused):
    code = "no_capacity"

    def __init__(self, *, gpus: int, max_gpus_available: int) -> None:
        super().__init__(
            f"{gpus} GPUs cannot be placed in this region for that window; "
            f"the largest lease that fits is {max_gpus_available} GPUs."
        )
        self.max_gpus_available = max_gpus_available

    def extra(self) -> dict[str, object]:
        return {"max_gpus_available": self.max_gpus_available}


class NotExtendable(BookingRefused):
    code = "not_extendable"

    def __init__(self, *, free_until: datetime) -> None:
        super().__init__(
            f"The lease's GPUs are booked by someone else from {free_until.isoformat()}; "
            "it can be extended up to then."
        )
        self.free_until = free_until

    def extra(self) -> dict[str, object]:
        return {"free_until": self.free_until.isoformat()}


class InvalidState(BookingRefused):
    code = "invalid_state"


class PriceMissing(BookingRefused):
    code = "no_price"

    def __init__(self, *, kind: str, region_code: str) -> None:
        super().__init__(f"No price is set for {kind} GPUs in {region_code}.")
