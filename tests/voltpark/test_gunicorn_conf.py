"""gunicorn.conf.py: the web process's port, workers, threads and timeout come from the environment."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def gunicorn_config(**env: str) -> subprocess.CompletedProcess[str]:
    """gunicorn's settings as it prints them after reading gunicorn.conf.py from the working directory;
    the web process's own variables are only those given."""
    ours = {"PORT", "GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_TIMEOUT_S", "FORWARDED_ALLOW_IPS"}
    environment = {k: v for k, v in os.environ.items() if k not in ours}
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "voltpark.wsgi:application"],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def values(output: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)\s+= (.*)$", output, re.M))


def test_the_defaults_serve_port_8000_with_4_workers_of_4_threads_and_log_each_request() -> None:
    result = gunicorn_config()
    config = values(result.stdout)
    assert result.returncode == 0, result.stderr
    assert config["bind"] == "['0.0.0.0:8000']"
    assert (config["workers"], config["threads"], config["timeout"]) == ("4", "4", "30")
    assert config["accesslog"] == "-" and "%(M)sms" in config["access_log_format"]
    assert "request_id=%({x-request-id}o)s" in config["access_log_format"]
    assert config["forwarded_allow_ips"] == "['127.0.0.1', '::1']"


def test_the_environment_sets_port_workers_threads_timeout_and_trusted_proxies() -> None:
    result = gunicorn_config(
        PORT="9001",
        GUNICORN_WORKERS="3",
        GUNICORN_THREADS="8",
        GUNICORN_TIMEOUT_S="120",
        FORWARDED_ALLOW_IPS="10.0.0.1,10.0.0.2",
    )
    config = values(result.stdout)
    assert result.returncode == 0, result.stderr
    assert config["bind"] == "['0.0.0.0:9001']"
    assert (config["workers"], config["threads"], config["timeout"]) == ("3", "8", "120")
    assert config["forwarded_allow_ips"] == "['10.0.0.1', '10.0.0.2']"


def test_a_bad_value_stops_start_up_naming_the_variable() -> None:
    result = gunicorn_config(GUNICORN_WORKERS="many")
    assert result.returncode != 0
    assert "GUNICORN_WORKERS must be a whole number, not 'many'" in result.stderr
