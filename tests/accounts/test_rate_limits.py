"""allauth's rate limits on log-in, password reset and sign-up: answered 429 with Retry-After."""

import time

from allauth.core.internal import ratelimit
from django.conf import settings
from django.core import mail
from django.test import Client

from accounts.models import User

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


def per_key_limit(action: str) -> ratelimit.Rate:
    """The configured per-account (per email address) limit of an allauth action."""
    rates = ratelimit.parse_rates(settings.ACCOUNT_RATE_LIMITS[action])
    return next(rate for rate in rates if rate.per == "key")


class Later:
    """`time` as allauth's rate limiter sees it, `seconds` from now (so a window can pass at once)."""

    def __init__(self, seconds: float) -> None:
        self.offset = seconds

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def log_in(client, email: str, password: str):
    return client.post("/login/", {"login": email, "password": password})


def test_wrong_passwords_lock_the_account_until_the_window_passes(client, alice, monkeypatch) -> None:
    limit = per_key_limit("login_failed")
    for _ in range(limit.amount):
        refused = log_in(client, alice.email, "guess")
        assert refused.status_code == 200 and "not correct" in refused.content.decode()

    # Locked: even the right password is refused, and the answer says how long to wait.
    locked = log_in(client, alice.email, PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(int(limit.duration))
    assert "Wait 15 minutes and try again" in locked.content.decode()
    assert "_auth_user_id" not in client.session

    monkeypatch.setattr(ratelimit, "time", Later(limit.duration + 1))
    assert log_in(client, alice.email, PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_a_lock_on_one_account_leaves_the_others_alone(client, alice, bob) -> None:
    for _ in range(per_key_limit("login_failed").amount):
        log_in(client, alice.email, "guess")
    assert log_in(client, alice.email, PASSWORD).status_code == 429
    assert log_in(client, bob.email, PASSWORD).status_code == 302


def test_guessing_across_many_accounts_from_one_address_is_limited_too(client, db) -> None:
    rates = ratelimit.parse_rates(settings.ACCOUNT_RATE_LIMITS["login_failed"])
    per_ip = next(rate for rate in rates if rate.per == "ip")
    answers = [
        log_in(client, f"victim{i}@spray.example", "guess").status_code for i in range(per_ip.amount + 1)
    ]
    assert answers == [200] * per_ip.amount + [429]


def test_a_reset_storm_sends_at_most_the_configured_number_of_emails(client, alice) -> None:
    limit = per_key_limit("reset_password")
    answers = [client.post("/password/reset/", {"email": alice.email}).status_code for _ in range(10)]
    assert len(mail.outbox) == limit.amount
    assert answers == [302] * limit.amount + [429] * (10 - limit.amount)


def test_sign_ups_from_one_address_are_limited(db, settings) -> None:
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": "3/h/ip"}
    answers = [
        Client()
        .post(
            "/signup/",
            {"email": f"bot{i}@spam.example", "full_name": "Bot", "password1": "a-long-enough-pass-9"},
        )
        .status_code
        for i in range(4)
    ]
    assert answers == [302, 302, 302, 429]
    assert User.objects.filter(email__endswith="@spam.example").count() == 3
