"""Run every benchmark module of bench/ that has a main(), in name order."""

import importlib
import pkgutil
from pathlib import Path


def main() -> None:
    for module in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        bench = importlib.import_module(f"bench.{module.name}")
        if callable(getattr(bench, "main", None)):
            print(f"== bench.{module.name}", flush=True)
            bench.main()


if __name__ == "__main__":
    main()
