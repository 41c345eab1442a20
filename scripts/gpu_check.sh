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
# Run as root on a node with no lease running, it then checks the host backend on the real GPUs:
# a second agent with --backend host (homes and journal under a temporary folder, its own tenants
# group) makes a lease account for GPU 0 only; as that account, nvidia-smi must list exactly GPU 0
# (by UUID), CUDA_VISIBLE_DEVICES must be 0 and /dev/nvidia1 must not open; a process holding GPU 0
# is left running; the lease is ended and the account, its home and processes must be gone, the
# device file root's 0600 again and the answer gpus_clean: true. Exit status 3 when one of these
# fails. The device files' owners and modes are put back as they were when it exits.
# HOST_CHECK=0 skips this part.
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
chmod 755 "$WORK"   # the lease account must reach its home below it
AGENT_PID=""
HOST_AGENT_PID=""
DEVICE_MODES=""

stop_process() {
    local pid="$1"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

cleanup() {
    # Stop the agents first: they hold the ports and files under $WORK.
    stop_process "$AGENT_PID"
    stop_process "$HOST_AGENT_PID"
    # The host agent takes every free GPU's device file for root: put them back as they were.
    if [[ -n "$DEVICE_MODES" ]]; then
        while read -r path owner group mode; do
            chown "$owner:$group" "$path" && chmod "$mode" "$path"
        done <"$DEVICE_MODES"
    fi
    if [[ -n "${CHECK_GROUP:-}" ]]; then
        for user in $(getent group "$CHECK_GROUP" | cut -d: -f4 | tr , ' '); do
            userdel "$user" 2>/dev/null || true
            groupdel "$user" 2>/dev/null || true
        done
        groupdel "$CHECK_GROUP" 2>/dev/null || true
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
if [[ $status -ne 0 || "${HOST_CHECK:-1}" == "0" ]]; then
    exit "$status"
fi
if [[ $EUID -ne 0 ]]; then
    echo "== host backend not checked: run as root to check lease accounts on the GPUs"
    exit "$status"
fi

echo "== host backend: a lease account for GPU 0 only"
DEVICE_MODES="$WORK/device-modes"
stat -c '%n %u %g %a' /dev/nvidia[0-9]* >"$DEVICE_MODES"
CHECK_GROUP="vpcheck-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -m 755 "$WORK/home" && mkdir -m 700 "$WORK/host-leases"
HOST_PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$VENV/bin/python" -m nodeagent --backend host --host 127.0.0.1 --port "$HOST_PORT" \
    --lease-root "$WORK/host-leases" --home-root "$WORK/home" --tenants-group "$CHECK_GROUP" \
    >"$WORK/host-agent.log" 2>&1 &
HOST_AGENT_PID=$!

cat >"$WORK/host_check.py" <<'PY'
"""Make a lease of GPU 0, look at the GPUs as its account, end it, check nothing is left."""

import http.client
import json
import os
import pwd
import socket
import stat
import subprocess
import sys
import time

port, work = int(sys.argv[1]), sys.argv[2]
headers = {"Authorization": f"Bearer {os.environ['NODEAGENT_TOKEN']}", "Content-Type": "application/json"}
lease = "gpucheck" + os.urandom(3).hex()
failures = []


def call(method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def as_account(account, command):
    # A login shell, as sshd would give: ~/.profile and ~/.bashrc source the agent's env file.
    done = subprocess.run(["runuser", "-l", account, "-c", command], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout.strip(), done.stderr.strip()


deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
status, reading = call("GET", "/v1/gpus")
gpus = reading.get("gpus", [])
if status != 200 or not gpus:
    sys.exit(f"the host agent did not read the GPUs: {status} {reading}")
subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{work}/key"], check=True)
public = open(f"{work}/key.pub").read().strip()
status, body = call("PUT", f"/v1/leases/{lease}", {"gpu_indices": [0], "ssh_public_keys": [public]})
check(status == 200, f"PUT answered {status} {body}")
if status != 200:
    sys.exit(3)
account = body["account"]
code, out, err = as_account(account, "nvidia-smi --query-gpu=index,uuid --format=csv,noheader")
listed = [line.split(",")[1].strip() for line in out.splitlines() if "," in line]
print(f"     nvidia-smi as {account}: exit {code}: {out or err}")
check(listed == [gpus[0]["uuid"]], f"nvidia-smi lists only GPU 0 ({gpus[0]['uuid']})")
code, out, err = as_account(account, "echo $CUDA_VISIBLE_DEVICES")
check(out == "0", f"CUDA_VISIBLE_DEVICES is 0 (got {out!r})")
if len(gpus) > 1:
    code, out, err = as_account(account, ": < /dev/nvidia1")
    check(code != 0, f"/dev/nvidia1 does not open for the account ({err})")
subprocess.run(["runuser", "-u", account, "--", "setsid", "sh", "-c", "sleep 600 < /dev/nvidia0 &"], check=True)
uid = pwd.getpwnam(account).pw_uid
started = time.monotonic()
status, body = call("DELETE", f"/v1/leases/{lease}")
print(f"     DELETE answered {status} in {time.monotonic() - started:.2f} s: {body}")
check(status == 200 and body.get("gpus_clean") is True, "the end reports gpus_clean: true")
check(body.get("processes_stopped", 0) >= 1, "the account's process was stopped")
left = subprocess.run(["pgrep", "-u", str(uid)], capture_output=True, text=True).stdout.split()
check(not left, f"no process of uid {uid} is left ({left})")
try:
    pwd.getpwnam(account)
    check(False, f"account {account} is removed")
except KeyError:
    check(True, f"account {account} is removed")
check(not os.path.exists(f"{work}/home/{account}"), "its home is deleted")
info = os.stat("/dev/nvidia0")
check((info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o600), "/dev/nvidia0 is root's 0600 again")
sys.exit(3 if failures else 0)
PY

host_status=0
PYTHONPATH="$PWD" "$VENV/bin/python" "$WORK/host_check.py" "$HOST_PORT" "$WORK" || host_status=$?
if [[ $host_status -ne 0 ]]; then
    echo "== host agent log" >&2
    cat "$WORK/host-agent.log" >&2
    exit 3
fi
echo "== host backend OK"
exit 0
