"""Strict readers of environment variables: a bad value names the variable and stops start-up."""

import os
import re
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str) -> str:
    """The variable as a string, or the default when unset."""
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    """The variable as a boolean; only the usual yes/no words are accepted."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (1/0, yes/no, on/off), not {raw!r}")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    """The variable as an integer, at least `minimum` when given."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def envlist(name: str, default: str) -> list[str]:
    """The variable as a comma-separated list with blanks dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


RATE = re.compile(r"^[1-9][0-9]*/[0-9]*[smhd]/(ip|key|user)$")
THROTTLE_RATE = re.compile(r"[1-9][0-9]*/[smhd]")


def envrates(name: str, default: str) -> str:
    """The variable as allauth rate limits: comma-separated `amount/period/per`, as in `5/15m/key`."""
    raw = os.environ.get(name, default)
    for rate in raw.split(","):
        if not RATE.match(rate.strip()):
            raise ImproperlyConfigured(
                f"{name} must be limits such as 10/m/ip,5/15m/key (amount/period/ip|key|user), not {raw!r}"
            )
    return raw


def envrate(name: str, default: str) -> str:
    """The variable as a DRF throttle rate: `amount/period`, the period s, m, h or d (`60/m`)."""
    raw = os.environ.get(name, default)
    if not THROTTLE_RATE.fullmatch(raw):
        raise ImproperlyConfigured(f"{name} must be a rate such as 60/m (amount/s|m|h|d), not {raw!r}")
    return raw


def envsso(prefix: str) -> list[dict[str, str]]:
    """An SSO provider's app for allauth from `<prefix>_CLIENT_ID` and `<prefix>_CLIENT_SECRET`: none
    (the provider is off) when both are unset; one without the other is an error."""
    client_id = os.environ.get(f"{prefix}_CLIENT_ID", "")
    secret = os.environ.get(f"{prefix}_CLIENT_SECRET", "")
    if bool(client_id) != bool(secret):
        raise ImproperlyConfigured(f"{prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET must be set together")
    return [{"client_id": client_id, "secret": secret, "key": ""}] if client_id else []


def strong_secret(secret: str) -> bool:
    """Whether a secret is long enough and not trivially repetitive: at least 50 characters, at least 10
    different ones, and not one shorter piece repeated (`abcabc…`)."""
    periodic = (secret + secret).find(secret, 1) < len(secret)
    return len(secret) >= 50 and len(set(secret)) >= 10 and not periodic


def envfernetkeys(name: str, default: str) -> list[str]:
    """The variable as Fernet keys (url-safe base64 of 32 bytes), comma-separated, newest first."""
    from cryptography.fernet import Fernet

    keys = envlist(name, default)
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: key {position} is not a Fernet key (url-safe base64 of 32 bytes); make one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
    return keys


def envurl(name: str, default: str | None, *, schemes: set[str]) -> str | None:
    """The variable as a URL whose scheme is one of `schemes`."""
    raw = os.environ.get(name, default)
    if raw is None or raw == "":
        return None
    scheme = urlsplit(raw).scheme
    if scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise ImproperlyConfigured(f"{name} must be a URL starting with one of {allowed}; got {raw!r}")
    return raw


def email_settings(url: str) -> dict[str, object]:
    """Django email settings from an EMAIL_URL such as smtp://user:pass@host:587?tls=1."""
    parts = urlsplit(url)
    backends = {
        "console": "django.core.mail.backends.console.EmailBackend",
        "locmem": "django.core.mail.backends.locmem.EmailBackend",
        "smtp": "django.core.mail.backends.smtp.EmailBackend",
        "dummy": "django.core.mail.backends.dummy.EmailBackend",
    }
    if parts.scheme not in backends:
        raise ImproperlyConfigured(f"EMAIL_URL must start with one of {', '.join(backends)}://, not {url!r}")
    query = parse_qs(parts.query)
    return {
        "EMAIL_BACKEND": backends[parts.scheme],
        "EMAIL_HOST": parts.hostname or "localhost",
        "EMAIL_PORT": parts.port or 25,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": query.get("tls", ["0"])[0] in TRUE_WORDS,
    }
