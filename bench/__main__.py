"""Run every benchmark module (bench/*.py with a `main()`), each in its own process; not the soak,
which runs for half an hour on its own (`make soak`)."""

import subprocess
import sys
from pathlib import Path


def modules() -> list[str]:
    """Benchmark modules: bench/*.py defining `def main(`, in name order."""
    here = Path(__file__).parent
    return sorted(
        p.stem
        for p in here.glob("*.py")
        if not p.stem.startswith("_") and p.stem != "soak" and "\ndef main(" in p.read_text(encoding="utf-8")
    )


def main() -> int:
    failed = 0
    for name in modules():
        print(f"== bench.{name}", flush=True)
        # A process each: every module configures Django (its own database) before importing it.
        failed += subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
