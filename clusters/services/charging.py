"""How booking is paid for, seen from clusters: the calls booking makes, answered by billing.

clusters sits below billing (docs/architecture.md), so booking cannot import the ledger. Billing
registers its `Charging` when Django starts (billing/apps.py); booking calls it inside its own
transactions, so a refused payment books nothing and a commitment is charged with its lease or
not at all. Without billing installed nothing is charged and nothing is refused.
"""

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from accounts.models import Organization, User
from clusters.models import Lease
from clusters.selectors.capacity import Window


class Charging(Protocol):
    """What billing does when leases are booked, extended, cancelled or fail."""

    def check_may_book(
        self, *, organization: Organization, kind: str, gpus: int, window: Window, price: Decimal
    ) -> None:
        """Raise a Refused (402) when the organization may not book this now; called under its lock."""

    def lease_booked(self, *, lease: Lease, actor: User | None) -> None:
        """Charge what the booking commits to (a reserved lease's window), in the booking's transaction."""

    def lease_extended(self, *, lease: Lease, old_end: datetime, actor: User | None) -> None:
        """Charge the added window of a reserved lease, in the extension's transaction."""

    def lease_cancelled(self, *, lease: Lease, actor: User | None, at: datetime) -> None:
        """Refund what the cancellation rules give back, in the cancellation's transaction."""

    def lease_failed(self, *, lease: Lease) -> None:
        """Refund a lease that never started."""


class _Free:
    def check_may_book(
        self, *, organization: Organization, kind: str, gpus: int, window: Window, price: Decimal
    ) -> None:
        return None

    def lease_booked(self, *, lease: Lease, actor: User | None) -> None:
        return None

    def lease_extended(self, *, lease: Lease, old_end: datetime, actor: User | None) -> None:
        return None

    def lease_cancelled(self, *, lease: Lease, actor: User | None, at: datetime) -> None:
        return None

    def lease_failed(self, *, lease: Lease) -> None:
        return None


_registered: list[Charging] = [_Free()]


def charging_register(charging: Charging) -> None:
    """Billing's answer to booking (called once, from its AppConfig.ready)."""
    _registered[0] = charging


def charging() -> Charging:
    return _registered[0]
