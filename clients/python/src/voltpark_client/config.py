"""Where the client finds the API and its token: the environment first, then `voltpark login`'s file.

VOLTPARK_URL and VOLTPARK_TOKEN override the file; VOLTPARK_CONFIG names another file (default
$XDG_CONFIG_HOME/voltpark/config.toml, else ~/.config/voltpark/config.toml).
"""

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Settings:
    """The API's base URL and the token to send, and the file they may have come from."""

    url: str
    token: str | None
    path: Path


class ConfigError(Exception):
    """The config file exists but cannot be read; the message names it."""


def config_path() -> Path:
    if os.environ.get("VOLTPARK_CONFIG"):
        return Path(os.environ["VOLTPARK_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "voltpark" / "config.toml"


def load_settings(url: str | None = None) -> Settings:
    """`url` (a command-line option) over VOLTPARK_URL over the file over the default."""
    path = config_path()
    saved = _read(path)
    return Settings(
        url=(url or os.environ.get("VOLTPARK_URL") or saved.get("url") or DEFAULT_URL).rstrip("/"),
        token=os.environ.get("VOLTPARK_TOKEN") or saved.get("token"),
        path=path,
    )


def save_settings(*, url: str, token: str) -> Path:
    """Write the file readable by its owner only (it holds a secret); returns its path."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # JSON strings are valid TOML basic strings, so json.dumps quotes and escapes each value.
    text = f"# Written by `voltpark login`.\nurl = {json.dumps(url)}\ntoken = {json.dumps(token)}\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(path, 0o600)  # an older file may have been made with wider permissions
    return path


def forget_settings() -> bool:
    """Delete the file; whether there was one."""
    path = config_path()
    if not path.exists():
        return False
    path.unlink()
    return True


def _read(path: Path) -> dict[str, str]:
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"Cannot read {path}: {error}") from error
    return {key: value for key, value in data.items() if key in ("url", "token") and isinstance(value, str)}
