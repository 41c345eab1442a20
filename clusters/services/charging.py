"""How booking is paid for, seen from clusters: the calls booking makes once it has written, answered
by billing.

clusters sits below billing (docs/architecture.md), so booking cannot import the ledger. Billing
registers its `Charging` when Django starts (billing/apps.py), next to its payment check (a
`booking_check`, which refuses before anything is written); booking calls it inside its own
transactions, so a commitment is charged with its lease or not at all. Without billing nothing is
charged.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from accounts.models import User
from clusters.models import Lease


class Charging(Protocol):
    """What billing does when leases are booked, extended, cancelled or fail."""

    def lease_booked(
        self, *, lease: Lease, actor: User | None, findings: Mapping[str, object] | None = None
    ) -> None:
        """Charge what the booking commits to (a reserved lease's window), in the booking's transaction.

        `findings` are what the booking checks found (BookingAttempt.findings): billing's payment
        check leaves there what it read, so the charge does not read it again.
        """

    def lease_extended(self, *, lease: Lease, old_end: datetime, actor: User | None) -> None:
        """Charge the added window of a reserved lease, in the extension's transaction."""

    def lease_cancelled(self, *, lease: Lease, actor: User | None, at: datetime) -> None:
        """Refund what the cancellation rules give back, in the cancellation's transaction."""

    def lease_failed(self, *, lease: Lease) -> None:
        """Refund a lease that never started."""


class _Free:
    def lease_booked(
        self, *, lease: Lease, actor: User | None, findings: Mapping[str, object] | None = None
    ) -> None:
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
