"""`make demo`'s last step: `python -m voltpark.demo_run [COMMAND...]` runs the Procfile's processes
(honcho by default); once the site answers it prints the logins, then the address, last and plainly;
and however it ends (Ctrl-C, SIGTERM or SIGHUP, or a process dying) it stops the embedded
PostgreSQL and Redis it ran on, so nothing is left running.

PORT says where the site listens (8000); VOLTPARK_DATA_DIR where the embedded servers keep their
files (.data). With DATABASE_URL and REDIS_URL set no embedded server runs and stopping is a no-op.
"""

import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

from voltpark.demo_logins import logins_text

BASE_DIR = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 180.0
POLL_S = 0.5
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def banner(url: str) -> str:
    """What is printed once the site answers: the logins, then the address on a line of its own."""
    rule = "=" * 72
    return "\n".join(
        [
            "",
            rule,
            "Demo accounts:",
            logins_text(),
            "",
            "Voltpark is running. Open:",
            "",
            f"    {url}",
            "",
            "Ctrl-C stops everything, the embedded PostgreSQL and Redis included.",
            rule,
            "",
        ]
    )


def announce_when_ready(
    url: str, out: TextIO, stop: threading.Event, timeout_s: float = READY_TIMEOUT_S
) -> bool:
    """Wait for `url`healthz to answer 200, then print the banner; False if it never did."""
    waited = 0.0
    while not stop.is_set() and waited < timeout_s:
        try:
            with urllib.request.urlopen(f"{url}healthz", timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    out.write(banner(url))
                    out.flush()
                    return True
        except (urllib.error.URLError, OSError):
            pass
        stop.wait(POLL_S)
        waited += POLL_S
    return False


def run(command: Sequence[str], *, url: str, stop_servers: Callable[[], None], out: TextIO) -> int:
    """Run `command` until it exits, forwarding the stop signals to it; then stop the servers."""
    # Its own session: a Ctrl-C reaches it once, forwarded from here, not also from the terminal.
    child = subprocess.Popen(list(command), start_new_session=True)

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in SIGNALS}
    finished = threading.Event()
    announcer = threading.Thread(target=announce_when_ready, args=(url, out, finished), daemon=True)
    announcer.start()
    try:
        return child.wait()
    finally:
        finished.set()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child.poll() is None:
            child.terminate()
            child.wait(timeout=30)
        stop_servers()


def stop_embedded_servers() -> None:
    """Stop the embedded PostgreSQL and Redis of the data folder, if they run."""
    from voltpark.embedded import stop

    data_dir = Path(os.environ.get("VOLTPARK_DATA_DIR", str(BASE_DIR / ".data")))
    print(f"Stopping the embedded PostgreSQL and Redis in {data_dir} ...", flush=True)
    stop(data_dir)


def main(argv: Sequence[str]) -> int:
    command = list(argv) or [str(Path(sys.executable).parent / "honcho"), "-f", "Procfile.demo", "start"]
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/"
    return run(command, url=url, stop_servers=stop_embedded_servers, out=sys.stdout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
