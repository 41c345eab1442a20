"""Writing a benchmark's results into docs/benchmarks.md without losing the runs before it."""

import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def section_write(section: str, *, path: Path = DOCS) -> None:
    """Put a run's section ("## Title" and its text) at the top of that section in the document:
    the new run under its own dated heading, what the section held before (earlier runs, notes
    written by hand) kept below it. A section not there yet is added at the end."""
    title, _, body = section.partition("\n")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    run = f"### Run of {when}\n\n{body.strip()}\n"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(title + "\n")
    if start < 0:
        path.write_text(f"{text.rstrip()}\n\n{title}\n\n{run}")
        return
    end = text.find("\n## ", start + len(title))
    end = len(text) if end < 0 else end + 1
    earlier = text[start + len(title) : end].strip()
    kept = f"{title}\n\n{run}" + (f"\n{earlier}\n" if earlier else "")
    path.write_text(text[:start] + kept + ("\n" + text[end:] if end < len(text) else ""))
