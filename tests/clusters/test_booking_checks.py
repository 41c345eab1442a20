"""Booking checks: rules registered with `booking_check` run in the booking's transaction, under the
organization's lock and before placement; a refusal answers as every refusal does and writes nothing."""

from decimal import Decimal

import pytest

from accounts.models import AuditEntry, Organization
from clusters.models import Allocation, Lease
from clusters.services import booking
from clusters.services.booking import BookingAttempt
from core.refusals import Refused
from tests.clusters.helpers import later, reserved


class PaymentMissing(Refused):
    code = "payment_required"
    status = 402
    field = "gpus"


@pytest.fixture
def checks(monkeypatch) -> list:
    """The registered checks, replaced by the test's own for its duration."""
    registered: list = []
    monkeypatch.setattr(booking, "_booking_checks", registered)
    return registered


def test_a_check_that_refuses_answers_with_its_refusal_and_nothing_is_written(api_as, alice, fleet, checks):
    def refuse(attempt: BookingAttempt) -> None:
        raise PaymentMissing("Add a card or top up your balance before booking.")

    booking.booking_check(refuse)
    response = api_as(alice).post("/api/v1/leases/", reserved(4), format="json")
    assert response.status_code == 402
    assert response.json()["code"] == "payment_required"
    assert response.json()["detail"] == "Add a card or top up your balance before booking."
    assert not Lease.objects.exists() and not Allocation.objects.exists()
    assert not AuditEntry.objects.filter(action="lease.book").exists()


def test_checks_see_the_booking_and_the_organization_as_read_under_its_lock(
    api_as, alice, acme, fleet, checks
):
    seen: list[BookingAttempt] = []
    booking.booking_check(seen.append)
    Organization.objects.filter(pk=acme.pk).update(gpu_quota=640)  # after the request's own copy was read
    start = later(3)
    response = api_as(alice).post("/api/v1/leases/", reserved(8, start=start, hours=3), format="json")
    assert response.status_code == 201, response.json()
    (attempt,) = seen
    assert attempt.organization.pk == acme.pk and attempt.organization.gpu_quota == 640
    assert attempt.user == alice and attempt.region.code == "us-tx-1"
    assert (attempt.gpus, attempt.kind) == (8, "reserved")
    assert (attempt.window.start, attempt.window.hours) == (start, 3)
    assert attempt.price_per_gpu_hour == Decimal("1.9900")


def test_checks_run_in_the_order_they_were_registered_and_the_first_refusal_wins(
    api_as, alice, fleet, checks
):
    ran: list[str] = []

    def first(attempt: BookingAttempt) -> None:
        ran.append("first")
        raise PaymentMissing("First.")

    def second(attempt: BookingAttempt) -> None:
        ran.append("second")

    booking.booking_check(first)
    booking.booking_check(second)
    response = api_as(alice).post("/api/v1/leases/", reserved(1), format="json")
    assert response.json()["detail"] == "First." and ran == ["first"]
