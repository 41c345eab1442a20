"""What the commands print: aligned tables and `key: value` facts for people, JSON for scripts,
and a progress line on stderr while a command waits."""

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
# Without a terminal (a CI log), a progress line only when something changes or this often.
QUIET_PROGRESS_EVERY_S = 30.0


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO) -> None:
    """Columns padded to their widest cell, two spaces apart; numbers right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    numeric = [
        bool(rows) and all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))
    ]
    for row in [list(headers), *cells]:
        padded = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        ]
        out.write("  ".join(padded).rstrip() + "\n")


def facts(pairs: Sequence[tuple[str, Any]], out: TextIO) -> None:
    width = max(len(label) for label, _ in pairs)
    for label, value in pairs:
        out.write(f"{label + ':':<{width + 1}} {value}\n")


def as_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


class Progress:
    """`Waiting for …` on stderr: a spinner redrawn in place on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.tty = out.isatty()
        self.started = time.monotonic()
        self.frame = 0
        self.last_text = ""
        self.last_line_at = 0.0

    def update(self, text: str) -> None:
        elapsed = f"{time.monotonic() - self.started:.0f} s"
        if self.tty:
            self.frame += 1
            self.out.write(f"\r\x1b[2K{SPINNER[self.frame % len(SPINNER)]} {text} ({elapsed})")
        elif text != self.last_text or time.monotonic() - self.last_line_at >= QUIET_PROGRESS_EVERY_S:
            self.out.write(f"{text} ({elapsed})\n")
            self.last_line_at = time.monotonic()
        self.last_text = text
        self.out.flush()

    def done(self) -> None:
        if self.tty:
            self.out.write("\r\x1b[2K")
            self.out.flush()
