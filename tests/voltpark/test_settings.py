"""Settings: a bad environment value stops start-up with a message naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from voltpark.env import email_settings, envbool, envint, envurl

ROOT = Path(settings.BASE_DIR)


def start_django(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be true or false"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must be a URL starting with one of postgres"),
        ("REDIS_URL", "http://x", "REDIS_URL must be a URL starting with one of"),
        ("EMAIL_URL", "pigeon://coop", "EMAIL_URL must start with one of"),
        ("SECRET_KEY", "short", "SECRET_KEY must be at least 32 characters"),
        ("STRIPE_ENABLED", "yes", "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable: str, value: str, message: str) -> None:
    result = start_django(**{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_production_refuses_the_development_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**env, "DEBUG": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_good_values_start(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        start_django(DEBUG="off", SECRET_KEY="x" * 40, EMAIL_URL="smtp://u:p@mail:587?tls=1").returncode == 0
    )


def test_the_helpers_parse_and_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N", "12")
    monkeypatch.setenv("B", "Yes")
    assert envint("N", 1) == 12 and envbool("B", False) is True and envint("UNSET_X", 7) == 7
    monkeypatch.setenv("N", "-1")
    with pytest.raises(ImproperlyConfigured, match="N must be at least 0"):
        envint("N", 1, minimum=0)
    monkeypatch.setenv("U", "ftp://x")
    with pytest.raises(ImproperlyConfigured, match="U must be a URL"):
        envurl("U", None, schemes={"http"})
    smtp = email_settings("smtp://me%40x.com:pw@mail.example:587?tls=1")
    assert (smtp["EMAIL_HOST"], smtp["EMAIL_PORT"], smtp["EMAIL_HOST_USER"], smtp["EMAIL_USE_TLS"]) == (
        "mail.example",
        587,
        "me@x.com",
        True,
    )
