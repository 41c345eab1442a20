"""Times as people type them on the command line, and as the tables print them."""

import re
from datetime import UTC, datetime, timedelta

RELATIVE = re.compile(r"^\+(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """`now`, `+2h`, `+1d12h`, `+90m`, or ISO 8601 (`2026-05-01 09:00`, `…T09:00Z`, `…+02:00`).

    A time without an offset is in this computer's time zone. Relative times and `now` fall on
    the whole minute (the API books whole minutes).
    """
    now = now or datetime.now(UTC)
    value = text.strip()
    if value == "now":
        return _minute(now)
    relative = RELATIVE.match(value)
    if relative and any(relative.groups()):
        days, hours, minutes = (int(part or 0) for part in relative.groups())
        return _minute(now + timedelta(days=days, hours=hours, minutes=minutes))
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give `now`, `+2h`, `+1d12h` or `2026-05-01 09:00` (ISO 8601)."
        ) from None
    return parsed if parsed.tzinfo else parsed.astimezone()


def _minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def local(text: str | None) -> str:
    """An API instant in this computer's zone, `2026-05-01 09:00 CDT`; `-` for none."""
    if not text:
        return "-"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M %Z")
