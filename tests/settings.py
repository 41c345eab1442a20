"""The suite's settings: Voltpark's own, with the SSO providers' endpoints pointed at the stand-in
server of tests/accounts/sso_provider.py on a loopback port (SSO_TEST_PORT). The providers stay off
(no client id) except in the tests that switch them on."""

import os

SSO_TEST_PORT = int(os.environ.get("SSO_TEST_PORT", "18690"))
os.environ.setdefault("SSO_GITHUB_URL", f"http://127.0.0.1:{SSO_TEST_PORT}/github")
os.environ.setdefault("SSO_GOOGLE_URL", f"http://127.0.0.1:{SSO_TEST_PORT}/google")

from voltpark.settings import *  # noqa: E402, F403
