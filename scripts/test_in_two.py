"""`make test`'s suite as two pytest processes side by side, inside CI's 20 minutes on two cores.

The browser journeys and the scaled soak (tests/browser, tests/bench) mostly wait on Chromium, live
servers and the soak's own platform; the rest of the suite mostly runs. One after the other they took
1,134 s here; side by side each has a core. The journeys get a test database, a Redis database and
loopback port ranges of their own, so the two share nothing; the rest keeps the environment as it is
and prints as it goes, the journeys' log follows when both are done. Without DATABASE_URL and
REDIS_URL (the embedded servers of a fresh clone) the suite runs in one process, as before.
"""

import os
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit, urlunsplit

JOURNEYS = ["tests/browser", "tests/bench"]
# Each test's range variable (tests/live.py, the browser harness, the soak...), here in 12000-12999:
# below the kernel's ephemeral ports and apart from every default range.
JOURNEY_PORTS = {
    "RUNTIME_TEST_PORTS": "12000-12099",
    "BROWSER_TEST_PORTS": "12100-12199",
    "BROWSER_AGENT_PORTS": "12200-12299",
    "SSO_TEST_PORTS": "12300-12309",
    "SOAK_TEST_PORTS": "12400-12499",
    "CLI_TEST_PORTS": "12500-12549",
    "CLI_AGENT_PORTS": "12550-12599",
    "DEMO_TEST_PORTS": "12600-12649",
    "HOST_SSH_TEST_PORTS": "12650-12699",
}


def own_database(url: str, suffix: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))


def own_redis(url: str) -> str:
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


def main() -> int:
    pytest = [sys.executable, "-m", "pytest", *sys.argv[1:]]
    database, redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not (database and redis):
        return subprocess.call(pytest)
    journeys_env = {
        **os.environ,
        **JOURNEY_PORTS,
        "DATABASE_URL": own_database(database, "_journeys"),
        "REDIS_URL": own_redis(redis),
    }
    with tempfile.TemporaryFile(mode="w+") as log:
        journeys = subprocess.Popen(
            [*pytest, *JOURNEYS], env=journeys_env, stdout=log, stderr=subprocess.STDOUT
        )
        rest = subprocess.call([*pytest, *(f"--ignore={path}" for path in JOURNEYS)])
        journeyed = journeys.wait()
        log.seek(0)
        print(f"\n===== {' and '.join(JOURNEYS)}, side by side with the rest =====", flush=True)
        sys.stdout.write(log.read())
    return 1 if rest or journeyed else 0


if __name__ == "__main__":
    sys.exit(main())
