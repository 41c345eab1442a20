"""Durations in words, written once for pages, emails and refusals."""

from datetime import timedelta

UNITS = (("day", timedelta(days=1)), ("hour", timedelta(hours=1)), ("minute", timedelta(minutes=1)))


def duration_words(span: timedelta) -> str:
    """At most the two largest units, rounded down: '180 days', '2 days 3 hours', '1 hour 5 minutes'."""
    parts: list[tuple[int, str]] = []
    rest = max(span, timedelta(0))
    for unit, size in UNITS:
        count, rest = divmod(rest, size)
        if count or parts:
            parts.append((count, unit))
        if len(parts) == 2:
            break
    words = [f"{count} {unit}{'' if count == 1 else 's'}" for count, unit in parts if count]
    return " ".join(words) or "under a minute"
