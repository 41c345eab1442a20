"""Production settings from the environment: HTTPS only (redirect, HSTS, the proxy's header), a
Permissions-Policy, a strong SECRET_KEY, and `manage.py check --deploy` clean."""

import os
import secrets
import subprocess
import sys

import pytest
from django.test import Client

from tests.voltpark.test_settings import (
    AGENT_KEY,
    PRODUCTION_KEY,
    ROOT,
    SERVERS,
    print_after_start_up,
    start_django,
)

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": PRODUCTION_KEY,
    "AGENT_TOKEN_KEYS": AGENT_KEY,
    "ALLOWED_HOSTS": "voltpark.example",
}


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**os.environ, **SERVERS, **PRODUCTION},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_redirects_to_https_and_asks_for_hsts_preload() -> None:
    values = "settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_PRELOAD"
    assert print_after_start_up(values, **PRODUCTION) == "True 31536000 True"
    assert print_after_start_up(values, DEBUG="true") == "False 0 True"


def test_the_proxys_https_header_is_believed_only_when_configured() -> None:
    expression = "settings.SECURE_PROXY_SSL_HEADER"
    assert print_after_start_up(expression, **PRODUCTION) == "None"
    configured = print_after_start_up(expression, **PRODUCTION, SECURE_PROXY_SSL_HEADER="true")
    assert configured == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.parametrize(
    "key",
    [
        "x" * 64,  # one character
        "abcdefghijk" * 6,  # 66 characters, one piece repeated
        secrets.token_urlsafe(30),  # 40 characters
        "0123456789" * 5,  # 50 characters, 10 different ones, but one piece repeated
    ],
)
def test_production_refuses_a_weak_secret_key(key: str) -> None:
    result = start_django(**{**PRODUCTION, "SECRET_KEY": key})
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters" in result.stderr


def test_development_takes_a_shorter_key() -> None:
    assert start_django(DEBUG="true", SECRET_KEY="d" * 40).returncode == 0


def test_over_https_behind_the_proxy_the_answer_carries_hsts_and_plain_http_is_redirected(
    settings, db
) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = Client().get("/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/login/"
    secure = Client().get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_health_checks_by_address_are_not_redirected(settings, db) -> None:
    settings.SECURE_SSL_REDIRECT = True
    assert Client().get("/healthz").status_code == 200


def test_every_answer_switches_off_the_browser_features_we_do_not_use(client, db) -> None:
    policy = client.get("/login/")["Permissions-Policy"]
    features = dict(item.split("=", 1) for item in policy.split(", "))
    assert features["camera"] == "()" and features["geolocation"] == "()" and features["payment"] == "()"
    assert features["publickey-credentials-get"] == "(self)"
    assert "Permissions-Policy" in client.get("/api/v1/regions/")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("", "AGENT_TOKEN_KEYS must be set when DEBUG is off"),
        ("dm9sdHBhcmstZGV2LW9ubHktYWdlbnQtdG9rZW5zISE=", "AGENT_TOKEN_KEYS must be set when DEBUG is off"),
        (f"{AGENT_KEY},not-a-key", "AGENT_TOKEN_KEYS: key 2 is not a Fernet key"),
    ],
)
def test_production_needs_agent_token_keys_of_its_own(keys: str, message: str) -> None:
    result = start_django(**{**PRODUCTION, "AGENT_TOKEN_KEYS": keys})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
