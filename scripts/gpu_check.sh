#!/usr/bin/env bash
# Check the node agent on a machine with NVIDIA GPUs (run from the repo root).
#
# Creates a throwaway venv with nvidia-ml-py and aiohttp (versions pinned as in
# requirements.txt), starts `python -m nodeagent --backend nvml` on a free
# loopback port with a random token, prints its /v1/gpus answer and how long one
# reading of all GPUs takes (median of READS reads: the backend called directly,
# then over HTTP), and stops it. Needs only python3 (with venv) and network
# access to PyPI. Exit status: 0 all GPUs read, 2 NVML degraded or a GPU lost.
# PYTHON=python3.12 picks the interpreter (3.11+ needed).
#
#   scripts/gpu_check.sh            READS=50 scripts/gpu_check.sh
#   KEEP_VENV=/opt/gpu-check-venv scripts/gpu_check.sh   (reuse a venv)
set -euo pipefail

READS="${READS:-20}"
PYTHON="${PYTHON:-python3}"
FALLBACK_NVML_PIN="nvidia-ml-py==13.580.82"
FALLBACK_AIOHTTP_PIN="aiohttp==3.14.5"

if [[ ! -f nodeagent/__main__.py ]]; then
    echo "gpu_check: run this from the repository root (nodeagent/ not found)" >&2
    exit 1
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "gpu_check: the agent needs Python 3.11+; '$PYTHON' is $("$PYTHON" -V 2>/dev/null || echo 'not found')." >&2
    echo "gpu_check: set PYTHON=python3.11 (or newer) and run again" >&2
    exit 1
fi

WORK="$(mktemp -d -t gpu-check.XXXXXX)"
AGENT_PID=""

cleanup() {
    # Stop the agent first: it holds the port and files under $WORK.
    if [[ -n "$AGENT_PID" ]] && kill -0 "$AGENT_PID" 2>/dev/null; then
        kill -TERM "$AGENT_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$AGENT_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$AGENT_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pin() {
    # The pin from requirements.txt, else the version this script was written for.
    local name="$1" fallback="$2" line
    line="$(grep -iE "^${name}==" requirements.txt 2>/dev/null | head -n1 || true)"
    echo "${line:-$fallback}"
}

VENV="${KEEP_VENV:-$WORK/venv}"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "== creating venv in $VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        echo "gpu_check: '$PYTHON -m venv' failed; on Debian/Ubuntu install python3-venv" >&2
        exit 1
    fi
fi
NVML_PIN="$(pin nvidia-ml-py "$FALLBACK_NVML_PIN")"
AIOHTTP_PIN="$(pin aiohttp "$FALLBACK_AIOHTTP_PIN")"
echo "== installing $NVML_PIN $AIOHTTP_PIN"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$NVML_PIN" "$AIOHTTP_PIN"

PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
TOKEN="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')"
export NODEAGENT_TOKEN="$TOKEN"   # the environment, not argv: ps must not show it

echo "== starting the agent on 127.0.0.1:$PORT (NVML backend)"
"$VENV/bin/python" -m nodeagent --backend nvml --host 127.0.0.1 --port "$PORT" \
    --lease-root "$WORK/leases" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!

cat >"$WORK/check.py" <<'PY'
"""Wait for the agent, print its reading, time readings directly and over HTTP."""

import http.client
import json
import os
import socket
import statistics
import sys
import time

from nodeagent.backends.nvml import NvmlBackend

port, reads, work, agent_pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
headers = {"Authorization": f"Bearer {os.environ['NODEAGENT_TOKEN']}"}


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def wait_for_agent() -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(agent_pid, 0)
        except ProcessLookupError:
            sys.exit("the agent exited during start-up (its log follows)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("the agent did not listen within 30 s (its log follows)")


def report(label: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    print(f"{label}: median {statistics.median(ms):.2f} ms, min {ms[0]:.2f}, max {ms[-1]:.2f} ({len(ms)} reads)")


wait_for_agent()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
status, body = get(conn, "/v1/gpus")
if status != 200:
    sys.exit(f"GET /v1/gpus answered {status}: {body[:500]!r}")
reading = json.loads(body)
print("== GET /v1/gpus")
print(json.dumps(reading, indent=2))

print(f"== one reading of all {len(reading['gpus'])} GPUs")
backend = NvmlBackend(socket.gethostname(), os.path.join(work, "direct-leases"))
started = time.perf_counter()
backend.read_gpus()
print(f"first direct reading (nvmlInit, handles, event set): {(time.perf_counter() - started) * 1000:.2f} ms")
direct = []
for _ in range(reads):
    started = time.perf_counter()
    backend.read_gpus()
    direct.append(time.perf_counter() - started)
report("direct NvmlBackend.read_gpus()", direct)
over_http = []
for _ in range(reads):
    started = time.perf_counter()
    status, _ = get(conn, "/v1/gpus")
    over_http.append(time.perf_counter() - started)
    assert status == 200, status
report("GET /v1/gpus over HTTP (keep-alive)", over_http)

lost = [gpu["index"] for gpu in reading["gpus"] if gpu["lost"]]
if reading["degraded"] or lost:
    print(f"== NOT HEALTHY: degraded={reading['degraded']} error={reading['error']!r} lost GPUs={lost}")
    sys.exit(2)
print("== OK")
PY

status=0
PYTHONPATH="$PWD" "$VENV/bin/python" "$WORK/check.py" "$PORT" "$READS" "$WORK" "$AGENT_PID" || status=$?
if [[ $status -ne 0 && $status -ne 2 ]]; then
    echo "== agent log" >&2
    cat "$WORK/agent.log" >&2
fi
exit "$status"
