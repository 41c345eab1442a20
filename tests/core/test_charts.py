"""The server-side SVG charts: well-formed, accessible, scaled to the data."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from core.charts import (
    HOVER_POINTS,
    BarSeries,
    Series,
    bar_chart,
    legend,
    line_chart,
    nice_ticks,
    series_table,
    time_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def polyline_points(root: ET.Element) -> list[list[tuple[float, float]]]:
    return [
        [(float(x), float(y)) for x, y in (pair.split(",") for pair in line.get("points", "").split())]
        for line in root.iter(f"{SVG}polyline")
    ]


def test_a_line_chart_is_an_accessible_image_with_title_and_description() -> None:
    svg = line_chart(
        title="GPU utilization",
        description="Utilization of 8 GPUs over the lease",
        series=[Series("gpu0", [(T0, 10), (T0 + timedelta(minutes=10), 90)])],
        y_label="%",
    )
    root = parse(svg)
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == "GPU utilization"
    assert desc is not None and desc.text == "Utilization of 8 GPUs over the lease"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


def test_a_line_chart_draws_one_point_per_sample_higher_values_higher_up() -> None:
    points = [(T0 + timedelta(minutes=i), Decimal(v)) for i, v in enumerate(["0", "50", "100"])]
    root = parse(line_chart(title="t", series=[Series("power", points)], y_label="W", y_max=100))
    [line] = polyline_points(root)
    assert len(line) == 3
    xs, ys = [p[0] for p in line], [p[1] for p in line]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    assert ys[0] > ys[1] > ys[2]  # SVG y grows downwards
    assert abs((ys[0] - ys[1]) - (ys[1] - ys[2])) < 0.2  # linear scale


def test_a_missing_value_leaves_a_gap_in_the_line() -> None:
    points = [
        (T0, 1),
        (T0 + timedelta(minutes=1), 2),
        (T0 + timedelta(minutes=2), None),
        (T0 + timedelta(minutes=3), 3),
    ]
    root = parse(line_chart(title="t", series=[Series("temp", points)], y_label="°C"))
    assert [len(run) for run in polyline_points(root)] == [2, 1]


def test_several_series_get_distinct_colors_and_a_legend() -> None:
    series = [Series(f"gpu{i}", [(T0, i), (T0 + timedelta(hours=1), i + 1)]) for i in range(3)]
    root = parse(line_chart(title="t", series=series, y_label="%"))
    colors = {line.get("stroke") for line in root.iter(f"{SVG}polyline")}
    assert len(colors) == 3
    legend = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert all(f"gpu{i}" in legend for i in range(3))


def test_labels_are_escaped() -> None:
    svg = line_chart(title="<script>x</script>", series=[Series("a&b", [(T0, 1)])], y_label="<y>")
    assert "<script>" not in svg
    root = parse(svg)
    assert root.find(f"{SVG}title").text == "<script>x</script>"


def test_an_empty_chart_says_there_is_no_data_yet() -> None:
    root = parse(line_chart(title="Memory", series=[Series("gpu0", [])], y_label="GiB"))
    assert "No data yet" in "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert polyline_points(root) == []


def test_time_labels_follow_the_viewers_zone() -> None:
    points = [(T0, 1), (T0 + timedelta(hours=5), 2)]
    utc = parse(line_chart(title="t", series=[Series("s", points)], y_label="x"))
    chicago = parse(
        line_chart(title="t", series=[Series("s", points)], y_label="x", tz=ZoneInfo("America/Chicago"))
    )
    texts = lambda root: [t.text for t in root.iter(f"{SVG}text")]  # noqa: E731
    assert "12:00" in texts(utc) and "06:00" in texts(chicago)


def test_stacked_bars_reach_the_total_of_their_category() -> None:
    root = parse(
        bar_chart(
            title="Revenue",
            categories=["Jan", "Feb"],
            series=[BarSeries("reserved", [Decimal("10"), Decimal("30")]), BarSeries("on demand", [10, 10])],
            y_label="USD",
        )
    )
    bars = list(root.iter(f"{SVG}rect"))
    bars = [b for b in bars if "bar" in (b.get("class") or "")]
    assert len(bars) == 4
    heights = [float(b.get("height", 0)) for b in bars]
    jan, feb = heights[0] + heights[1], heights[2] + heights[3]
    assert abs(feb / jan - 2) < 0.01
    assert "Feb, reserved: 30" in [b.find(f"{SVG}title").text for b in bars]


def test_side_by_side_bars_do_not_stack() -> None:
    root = parse(
        bar_chart(
            title="Free GPUs",
            categories=["Mon"],
            series=[BarSeries("us-tx-1", [8]), BarSeries("us-va-1", [8])],
            y_label="GPUs",
            stacked=False,
        )
    )
    bars = [b for b in root.iter(f"{SVG}rect") if "bar" in (b.get("class") or "")]
    assert bars[0].get("y") == bars[1].get("y") and bars[0].get("x") != bars[1].get("x")


def test_many_categories_thin_their_labels_so_they_do_not_overlap() -> None:
    days = [f"D{i}" for i in range(60)]
    root = parse(bar_chart(title="t", categories=days, series=[BarSeries("free", [1] * 60)], y_label="GPUs"))
    labels = [t.text for t in root.iter(f"{SVG}text") if (t.text or "").startswith("D")]
    assert 5 < len(labels) < 60


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0, 87) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0, 0.7)[-1] >= 0.7
    assert nice_ticks(5, 5) == [5, 5.2, 5.4, 5.6, 5.8, 6]


def test_time_ticks_fall_on_round_instants() -> None:
    ticks, fmt = time_ticks(T0 + timedelta(minutes=7), T0 + timedelta(hours=3))
    assert all(t.minute % 30 == 0 and t.second == 0 for t in ticks) and fmt == "%H:%M"
    assert len(ticks) <= 6
    days, day_fmt = time_ticks(T0, T0 + timedelta(days=14))
    assert day_fmt == "%b %d" and all(d.hour == 0 for d in days)


def test_eight_gpus_get_eight_colours_and_eight_line_styles() -> None:
    series = [Series(f"GPU {i}", [(T0, i), (T0 + timedelta(hours=1), i + 1)]) for i in range(8)]
    root = parse(line_chart(title="t", series=series, y_label="%"))
    looks = [(line.get("stroke"), line.get("stroke-dasharray")) for line in root.iter(f"{SVG}polyline")]
    assert len(looks) == 8
    assert len({color for color, _ in looks}) == 8 and len({dash for _, dash in looks}) == 8


def test_the_first_seconds_of_readings_already_have_a_time_axis() -> None:
    points = [(T0 + timedelta(seconds=s), 50) for s in (3, 13, 23)]
    root = parse(line_chart(title="t", series=[Series("GPU 0", points)], y_label="%"))
    labels = [t.text for t in root.find(f"{SVG}g[@class='axis']").iter(f"{SVG}text")]
    assert labels and labels[0] == "12:00:15" and all(label.count(":") == 2 for label in labels)


def test_hovering_a_line_or_a_point_shows_its_values() -> None:
    points = [(T0 + timedelta(minutes=i), v) for i, v in enumerate([10, 40, 70])]
    root = parse(line_chart(title="t", series=[Series("GPU 3", points)], y_label="%"))
    [group] = [g for g in root.iter(f"{SVG}g") if g.find(f"{SVG}polyline") is not None]
    assert group.find(f"{SVG}title").text == "GPU 3: latest 70 % (from 10 to 70)"
    hovers = [c.find(f"{SVG}title").text for c in group.iter(f"{SVG}circle")]
    assert hovers == ["GPU 3 at 12:00:00: 10 %", "GPU 3 at 12:01:00: 40 %", "GPU 3 at 12:02:00: 70 %"]


def test_a_long_line_carries_a_bounded_number_of_hover_points_ending_at_the_latest() -> None:
    points = [(T0 + timedelta(minutes=i), i) for i in range(1000)]
    root = parse(line_chart(title="t", series=[Series("GPU 0", points)], y_label="%"))
    hovers = [c.find(f"{SVG}title").text for c in root.iter(f"{SVG}circle")]
    assert len(hovers) <= HOVER_POINTS + 1 and hovers[-1].endswith(": 999 %")


def test_the_legend_outside_the_chart_names_each_series_with_its_look() -> None:
    html = legend(["GPU 0", "GPU 1"])
    assert html.count("<li>") == 2 and "GPU 1" in html and 'stroke-dasharray="8 3"' in html


def test_the_table_behind_a_chart_has_a_column_per_series_and_a_row_per_instant() -> None:
    a = Series("GPU 0", [(T0, 1), (T0 + timedelta(minutes=1), 2)])
    b = Series("GPU 1", [(T0 + timedelta(minutes=1), Decimal("3.456"))])
    table = series_table([a, b], tz=ZoneInfo("America/Chicago"), fmt="%H:%M")
    assert table.columns == ["Time", "GPU 0", "GPU 1"]
    assert table.rows == [["06:00", "1", ""], ["06:01", "2", "3.46"]]
    long = series_table([Series("s", [(T0 + timedelta(minutes=i), i) for i in range(500)])], most=50)
    assert len(long.rows) <= 51 and long.rows[-1][1] == "499" and long.rows[0][1] == "0"


def test_a_focusable_chart_says_each_series_latest_value_to_the_keyboard() -> None:
    series = [Series("GPU 0", [(T0, 10), (T0 + timedelta(minutes=1), 30)]), Series("GPU 1", [(T0, 5)])]
    root = parse(
        line_chart(title="Utilization", series=series, y_label="%", description="Per GPU.", focusable=True)
    )
    assert root.get("tabindex") == "0"
    assert root.find(f"{SVG}desc").text == (
        "Per GPU. GPU 0: latest 30 % (from 10 to 30); GPU 1: latest 5 % (from 5 to 5)."
    )
    assert parse(line_chart(title="t", series=series, y_label="%")).get("tabindex") is None
