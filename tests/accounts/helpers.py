"""Helpers of the accounts tests: Alice's SSH key, with the fingerprint ssh-keygen printed for it,
and the steps of signing in and setting up a second factor as a person does them."""

import re

import pyotp

from accounts.models import User

# Made with `ssh-keygen -t ed25519 -C alice@laptop`; `ssh-keygen -l` printed the fingerprint below.
ALICE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO9b5HXZXuZRtv+JcQ1bV/JpWNj7FXofAzvQyLj7ValI alice@laptop"
ALICE_FINGERPRINT = "SHA256:PXB0DbrO3z8NdHCjRPyItlg5XJBduqf5qF54IRvY5XU"

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


def log_in(client, user: User):
    return client.post("/login/", {"login": user.email, "password": PASSWORD})


def set_up_authenticator_app(client, user: User) -> str:
    """Log in, confirm the password (allauth asks again before any change of a second factor),
    and activate an authenticator app with a code computed from the secret the page shows."""
    log_in(client, user)
    client.post("/reauthenticate/", {"password": PASSWORD})
    page = client.get("/2fa/totp/activate/").content.decode()
    secret = re.search(r'id="authenticator_secret" value="([A-Z2-7]+)"', page).group(1)
    client.post("/2fa/totp/activate/", {"code": pyotp.TOTP(secret).now()})
    return page


def recovery_codes_shown(client) -> list[str]:
    """The unused recovery codes, as the recovery codes page shows them (after the password again)."""
    client.post("/reauthenticate/", {"password": PASSWORD})
    page = client.get("/2fa/recovery-codes/").content.decode()
    return re.search(r'<textarea[^>]*id="recovery_codes"[^>]*>(.*?)</textarea>', page, re.S).group(1).split()
