"""Server-side SVG charts: a line chart of time series and a (stacked) bar chart.

No JavaScript and no third-party code: the SVG is drawn here and embedded in the page, so it
works under the content security policy and without JavaScript. Each chart is an accessible
image (`role="img"`, `<title>` and `<desc>`); pages should also offer the numbers as a table.
Values may be Decimal, int or float; None leaves a gap in a line. Colors are presentation
attributes (allowed by the CSP, unlike style attributes) with `series-N` classes for CSS.

Eight series are told apart by colour *and* line style (the eighth is as distinct as the first);
each line and a thinned set of its points carry a `<title>`, so hovering shows the values. A page
may draw the legend outside the chart (`legend`: HTML that stays readable on a phone) and should
put the numbers in a table behind it (`series_table`).
"""

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify

Number = Decimal | int | float


# Eight colours, each at least 3:1 against white (WCAG's contrast for graphics), and eight dash
# patterns: series n has colour n and dash n, so no two of the first eight look alike.
PALETTE = ("#0b5cad", "#c2410c", "#15803d", "#7e22ce", "#be123c", "#0e7490", "#92400e", "#374151")
DASHES = ("", "8 3", "2 3", "10 3 2 3", "4 4", "12 2 2 2 2 2", "1 3", "6 2 1 2")
# Points of a line that carry a hover title (its value at that instant); the rest are line only.
HOVER_POINTS = 24


MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 12, 48


TIME_STEPS = [timedelta(seconds=s) for s in (10, 15, 30)] + [
    timedelta(minutes=m) for m in (1, 5, 10, 15, 30, 60, 180, 360, 720, 1440, 2880, 10080)
]
# The shortest span a time axis covers: a lease's first readings still get labelled instants.
TIME_SPAN_MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Series:
    """A named time series: (instant, value) points in time order; a None value is a gap."""

    name: str
    points: Sequence[tuple[datetime, Number | None]]


@dataclass(frozen=True)
class BarSeries:
    """A named row of values, one per category of a bar chart."""

    name: str
    values: Sequence[Number]


@dataclass(frozen=True)
class _Frame:
    """The plotting area and the value range it maps onto."""

    width: int
    height: int
    y_low: float
    y_high: float

    @property
    def plot_width(self) -> float:
        return self.width - MARGIN_LEFT - MARGIN_RIGHT

    @property
    def plot_height(self) -> float:
        return self.height - MARGIN_TOP - MARGIN_BOTTOM

    def y(self, value: float) -> float:
        span = (self.y_high - self.y_low) or 1.0
        return MARGIN_TOP + self.plot_height * (1 - (value - self.y_low) / span)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] with about `count` steps of 1, 2 or 5 × 10^n."""
    if high <= low:
        high = low + 1
    raw_step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    ticks = [round(math.floor(low / step) * step, 10)]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def format_number(value: float) -> str:
    """A tick label: no trailing zeros, thousands separated."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def time_ticks(start: datetime, end: datetime, most: int = 6) -> tuple[list[datetime], str]:
    """Tick instants on round boundaries between start and end, and the strftime format to label them."""
    span = max(end - start, TIME_SPAN_MIN)
    step = next((s for s in TIME_STEPS if span / s <= most), TIME_STEPS[-1])
    epoch = datetime(2000, 1, 3, tzinfo=start.tzinfo)  # a Monday, so week ticks fall on Mondays
    first = epoch + math.ceil((start - epoch) / step) * step
    ticks = []
    while first <= end:
        ticks.append(first)
        first += step
    if step < timedelta(minutes=1):
        fmt = "%H:%M:%S"
    elif step < timedelta(days=1):
        fmt = "%H:%M"
    else:
        fmt = "%b %d"
    return ticks, fmt


def line_chart(
    *,
    title: str,
    series: Sequence[Series],
    y_label: str,
    description: str = "",
    y_min: Number | None = 0,
    y_max: Number | None = None,
    width: int = 640,
    height: int = 240,
    tz: tzinfo | None = None,
    legend: bool = True,
    focusable: bool = False,
) -> SafeString:
    """An SVG line chart of time series sharing one y axis (e.g. GPU utilization over a lease).

    Time labels are shown in `tz` (the viewer's zone), UTC when not given. `legend=False` leaves the
    legend to the page (`legend(names)`). `focusable` lets the keyboard reach the chart, whose
    description then ends with each series' latest value (read out on focus).
    """
    points = [(t, float(v)) for s in series for t, v in s.points if v is not None]
    if not points:
        return _empty_chart(title=title, description=description, width=width, height=height)
    start, end = min(t for t, _ in points), max(t for t, _ in points)
    end = max(end, start + TIME_SPAN_MIN)  # from the first reading on, even before a minute of them
    values = [v for _, v in points]
    low = float(y_min) if y_min is not None else min(values)
    high = float(y_max) if y_max is not None else max(values)
    ticks = nice_ticks(low, max(high, low + 1e-9))
    frame = _Frame(width, height, min(ticks[0], low), max(ticks[-1], high))
    span = (end - start).total_seconds() or 1.0

    def x(instant: datetime) -> float:
        return MARGIN_LEFT + frame.plot_width * (instant - start).total_seconds() / span

    time_marks, fmt = time_ticks(start, end, most=5)
    show = (lambda t: t.astimezone(tz).strftime(fmt)) if tz else (lambda t: t.strftime(fmt))
    labels = [(x(t), show(t)) for t in time_marks]
    body = [_y_axis(frame, ticks, y_label), _x_axis(frame, labels)]
    point_time = (
        (lambda t: t.astimezone(tz).strftime("%H:%M:%S")) if tz else (lambda t: t.strftime("%H:%M:%S"))
    )
    for index, one in enumerate(series):
        body.append(_polylines(index, one, x, frame, y_label, point_time))
    if legend:
        body.append(_legend([s.name for s in series], frame))
    if focusable:
        latest = [_summary(s.name, [float(v) for _, v in s.points if v is not None], y_label) for s in series]
        description = f"{description or title} {'; '.join(latest)}."
    return _svg(
        title=title, description=description, width=width, height=height, body=body, focusable=focusable
    )


def bar_chart(
    *,
    title: str,
    categories: Sequence[str],
    series: Sequence[BarSeries],
    y_label: str,
    description: str = "",
    stacked: bool = True,
    width: int = 640,
    height: int = 240,
) -> SafeString:
    """An SVG bar chart: one bar per category, series stacked (or side by side when not stacked)."""
    if not categories or not series:
        return _empty_chart(title=title, description=description, width=width, height=height)
    totals = [sum(float(s.values[i]) for s in series) for i in range(len(categories))]
    tallest = max(totals) if stacked else max(float(v) for s in series for v in s.values)
    ticks = nice_ticks(0, max(tallest, 1e-9))
    frame = _Frame(width, height, 0.0, max(ticks[-1], tallest))
    slot = frame.plot_width / len(categories)
    labels = _category_labels(categories, slot)
    body = [_y_axis(frame, ticks, y_label), _x_axis(frame, labels)]
    for index in range(len(categories)):
        body.append(_bars(index, series, frame, slot, stacked, categories[index]))
    body.append(_legend([s.name for s in series], frame, lines=False))
    return _svg(title=title, description=description, width=width, height=height, body=body)


def _category_labels(categories: Sequence[str], slot: float) -> list[tuple[float, str]]:
    # Label every category when there is room, else every n-th so labels do not overlap.
    every = max(1, math.ceil(48 / slot))
    return [(MARGIN_LEFT + slot * (i + 0.5), name) for i, name in enumerate(categories) if i % every == 0]


def _bars(
    index: int, series: Sequence[BarSeries], frame: _Frame, slot: float, stacked: bool, category: str
) -> str:
    gap = slot * 0.2
    width = (slot - gap) if stacked else (slot - gap) / len(series)
    left = MARGIN_LEFT + slot * index + gap / 2
    base = 0.0
    rects = []
    for n, one in enumerate(series):
        value = float(one.values[index])
        bottom = base if stacked else 0.0
        top = bottom + value
        x = left if stacked else left + n * width
        y_top, y_bottom = frame.y(top), frame.y(bottom)
        label = escape(f"{category}, {one.name}: {format_number(value)}")
        rects.append(
            f'<rect class="bar series-{n % len(PALETTE)}" x="{x:.1f}" y="{y_top:.1f}" '
            f'width="{width:.1f}" height="{max(y_bottom - y_top, 0):.1f}" fill="{PALETTE[n % len(PALETTE)]}">'
            f"<title>{label}</title></rect>"
        )
        base = top if stacked else base
    return "".join(rects)


def _polylines(
    index: int,
    series: Series,
    x: Callable[[datetime], float],
    frame: _Frame,
    unit: str,
    point_time: Callable[[datetime], str],
) -> str:
    color, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
    runs: list[list[str]] = [[]]
    known = [(instant, float(value)) for instant, value in series.points if value is not None]
    for instant, value in series.points:
        if value is None:
            runs.append([])
            continue
        runs[-1].append(f"{x(instant):.1f},{frame.y(float(value)):.1f}")
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    lines = [
        f'<polyline class="line series-{index % len(PALETTE)}" fill="none" stroke="{color}" '
        f'stroke-width="2" stroke-linejoin="round"{dashed} points="{" ".join(run)}"/>'
        for run in runs
        if run
    ]
    step = max(1, math.ceil(len(known) / HOVER_POINTS))
    hover = known[::step] + ([known[-1]] if known and (len(known) - 1) % step else [])
    points = [
        f'<circle class="point" cx="{x(at):.1f}" cy="{frame.y(value):.1f}" r="3" fill="{color}">'
        f"<title>{escape(f'{series.name} at {point_time(at)}: {format_number(round(value, 2))} {unit}')}"
        "</title></circle>"
        for at, value in hover
    ]
    summary = _summary(series.name, [v for _, v in known], unit)
    return f"<g><title>{escape(summary)}</title>{''.join(lines)}{''.join(points)}</g>"


def _summary(name: str, values: Sequence[float], unit: str) -> str:
    if not values:
        return f"{name}: no readings"
    low, high = format_number(round(min(values), 2)), format_number(round(max(values), 2))
    return f"{name}: latest {format_number(round(values[-1], 2))} {unit} (from {low} to {high})"


def legend(names: Sequence[str]) -> SafeString:
    """The legend of a line chart as HTML (a list, each name beside its colour and line style), for a
    page to put under the chart: it stays readable where the chart is scaled down to a phone."""
    items = []
    for index, name in enumerate(names):
        color, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        items.append(
            '<li><svg class="swatch" viewBox="0 0 28 8" width="28" height="8" aria-hidden="true">'
            f'<line x1="0" y1="4" x2="28" y2="4" stroke="{color}" stroke-width="3"{dashed}/></svg>'
            f"{escape(name)}</li>"
        )
    return mark_safe(f'<ul class="chart-legend">{"".join(items)}</ul>')


@dataclass(frozen=True)
class Table:
    """A chart's numbers: the column names and one row per instant (the time, then each series)."""

    columns: list[str]
    rows: list[list[str]]


def series_table(
    series: Sequence[Series], *, tz: tzinfo | None = None, most: int = 60, fmt: str = "%Y-%m-%d %H:%M:%S"
) -> Table:
    """The values behind a line chart as rows of text: at most `most` instants (evenly thinned, the
    last always kept), oldest first, one column per series ("" where a series has no reading)."""
    by_instant: dict[datetime, dict[str, float]] = {}
    for one in series:
        for at, value in one.points:
            if value is not None:
                by_instant.setdefault(at, {})[one.name] = float(value)
    instants = sorted(by_instant)
    step = max(1, math.ceil(len(instants) / most))
    kept = instants[::step] + ([instants[-1]] if instants and (len(instants) - 1) % step else [])
    rows = [
        [(at.astimezone(tz) if tz else at).strftime(fmt)]
        + [
            format_number(round(by_instant[at][s.name], 2)) if s.name in by_instant[at] else ""
            for s in series
        ]
        for at in kept
    ]
    return Table(["Time", *(s.name for s in series)], rows)


def _y_axis(frame: _Frame, ticks: Sequence[float], label: str) -> str:
    parts = ['<g class="grid">']
    for tick in ticks:
        y = frame.y(tick)
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{frame.width - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e5e7eb"/><text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="#111827">{escape(format_number(tick))}</text>'
        )
    middle = MARGIN_TOP + frame.plot_height / 2
    parts.append(
        f'</g><text class="axis-label" x="12" y="{middle:.1f}" text-anchor="middle" fill="#4b5563" '
        f'transform="rotate(-90 12 {middle:.1f})">{escape(label)}</text>'
    )
    return "".join(parts)


def _x_axis(frame: _Frame, labels: Sequence[tuple[float, str]]) -> str:
    baseline = MARGIN_TOP + frame.plot_height
    parts = [
        f'<g class="axis"><line x1="{MARGIN_LEFT}" x2="{frame.width - MARGIN_RIGHT}" '
        f'y1="{baseline:.1f}" y2="{baseline:.1f}" stroke="#4b5563"/>'
    ]
    for x, text in labels:
        parts.append(
            f'<text x="{x:.1f}" y="{baseline + 16:.1f}" text-anchor="middle" fill="#111827">'
            f"{escape(text)}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _legend(names: Sequence[str], frame: _Frame, *, lines: bool = True) -> str:
    y = frame.height - 10
    parts = ['<g class="legend">']
    x = float(MARGIN_LEFT)
    for index, name in enumerate(names):
        color, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        mark = (
            f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 16:.1f}" y2="{y - 4}" stroke="{color}" '
            f'stroke-width="3"{dashed}/>'
            if lines
            else f'<rect x="{x:.1f}" y="{y - 9}" width="16" height="10" fill="{color}"/>'
        )
        parts.append(f'{mark}<text x="{x + 20:.1f}" y="{y}" fill="#111827">{escape(name)}</text>')
        x += 30 + 7 * len(name)
    parts.append("</g>")
    return "".join(parts)


def _empty_chart(*, title: str, description: str, width: int, height: int) -> SafeString:
    body = [
        f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" fill="#4b5563">'
        "No data yet</text>"
    ]
    return _svg(title=title, description=description or "No data yet.", width=width, height=height, body=body)


def _svg(
    *, title: str, description: str, width: int, height: int, body: Sequence[str], focusable: bool = False
) -> SafeString:
    content = "".join(body)
    tabindex = ' tabindex="0"' if focusable else ""
    chart_id = f"chart-{slugify(title)[:40]}-{hashlib.sha1(content.encode()).hexdigest()[:8]}"
    return mark_safe(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" id="{chart_id}"{tabindex}>'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description or title)}</desc>'
        f"{content}</svg>"
    )
