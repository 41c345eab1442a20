"""Formatting for the staff pages."""

from django import template

register = template.Library()
GIB = 1024**3


@register.filter
def gib(value: int | None) -> str:
    """Bytes as GiB with one decimal place."""
    if value is None:
        return "—"
    return f"{value / GIB:.1f}"


@register.filter
def percent(value: object) -> str:
    """A ratio (0.1234) as a percentage with one decimal place (12.3 %)."""
    try:
        return f"{float(value) * 100:.1f} %"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
