"""A scaled soak (bench/soak.py): an eighth of the fleet for three minutes, with every kind of fault,
region workers SIGKILLed and restarted, PostgreSQL and Redis each restarted once, clients booking
through the API; it passes when the soak found nothing wrong and did all it says it does."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak_threads import ABSORBED, DRAINING

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_a_scaled_soak_loses_no_transition_misses_no_fault_and_answers_no_5xx(tmp_path: Path) -> None:
    workdir = tmp_path / "soak"
    env = {
        **os.environ,
        "SOAK_NODES": "375",
        "SOAK_MINUTES": "3",
        "SOAK_CLIENTS": "4",
        "SOAK_FAULT_EVERY_S": "2",
        "SOAK_KILL_EVERY_S": "45",
        "SOAK_WORKDIR": str(workdir),
        "SOAK_WRITE_DOCS": "0",
        "SOAK_PORTS": os.environ.get("SOAK_TEST_PORTS", "38500-38599"),
    }

    run = subprocess.run(
        [sys.executable, "-m", "bench.soak"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )

    assert (workdir / "report.json").exists(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((workdir / "report.json").read_text())
    assert report["failures"] == [], run.stdout[-5000:]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert [what for what, _ in report["outages"]] == ["postgres", "redis"]
    assert report["kills"] >= 2
    assert set(report["faults"]["episodes"]) == set(DRAINING) | set(ABSORBED)
    assert report["api"]["statuses"].get("201", 0) > 20
    assert report["leases"]["states"].get("ended", 0) > 10
    assert report["freshness"]["checks"] > 50 and report["node_checks"] > 10
    assert report["memory"]["compared"] > 5
