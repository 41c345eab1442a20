"""Run every benchmark module in bench/ that defines main(), each in its own process, in turn."""

import ast
import subprocess
import sys
from pathlib import Path


def modules_with_main() -> list[str]:
    """Module names under bench/ whose source defines a top-level main() (found without importing)."""
    found = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            found.append(path.stem)
    return found


def run_all() -> int:
    failures = 0
    for name in modules_with_main():
        print(f"== bench.{name}", flush=True)
        failures += (
            subprocess.run([sys.executable, "-c", f"import bench.{name} as m; m.main()"]).returncode != 0
        )
    return failures


if __name__ == "__main__":
    sys.exit(1 if run_all() else 0)
