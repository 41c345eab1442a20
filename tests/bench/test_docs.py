"""A benchmark's run is written at the top of its section in docs/benchmarks.md, the runs and notes
before it kept, the other sections untouched."""

from pathlib import Path

from bench.docs import section_write

DOC = """# Benchmarks

## Booking

An earlier run: 19 bookings/s.

Notes written by hand.

## Soak

The soak's own text.
"""


def test_a_run_goes_on_top_of_its_section_and_the_earlier_ones_stay(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)

    section_write("## Booking\n\nA new run: 90 bookings/s.\n", path=doc)
    section_write("## Booking\n\nThe newest run: 120 bookings/s.\n", path=doc)

    text = doc.read_text()
    booking = text[text.index("## Booking") : text.index("## Soak")]
    order = [booking.index(s) for s in ("120 bookings/s", "90 bookings/s", "19 bookings/s", "by hand")]
    assert order == sorted(order) and booking.count("### Run of ") == 2
    assert text.startswith("# Benchmarks\n\n## Booking\n\n### Run of ")
    assert text.endswith("## Soak\n\nThe soak's own text.\n") and text.count("## Soak") == 1


def test_a_section_not_there_yet_is_added_at_the_end(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)

    section_write("## Telemetry storage\n\nOne run.\n", path=doc)

    text = doc.read_text()
    assert text.startswith(DOC.rstrip()) and text.rstrip().endswith("One run.")
    assert text.index("## Soak") < text.index("## Telemetry storage\n\n### Run of ")
