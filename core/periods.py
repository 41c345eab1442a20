"""Clock hours and calendar months in UTC, the units billing works in."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone


def floor_hour(at: datetime) -> datetime:
    """The start of the clock hour containing `at`, in UTC."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def month_start(year: int, month: int) -> datetime:
    """Midnight UTC on the first of the month."""
    return datetime(year, month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    """The first instant of the month after the one starting at `start`."""
    return month_start(start.year + start.month // 12, start.month % 12 + 1)


def month_of(at: datetime) -> datetime:
    """The start of the month containing `at`."""
    at = at.astimezone(UTC)
    return month_start(at.year, at.month)


def parse_month(text: str) -> datetime:
    """`YYYY-MM` as the start of that month; ValueError for anything else."""
    parsed = datetime.strptime(text, "%Y-%m")
    return month_start(parsed.year, parsed.month)


def previous_month(now: datetime | None = None) -> datetime:
    """The start of the month before the one containing `now`."""
    return month_of(month_of(now or timezone.now()) - timedelta(days=1))
