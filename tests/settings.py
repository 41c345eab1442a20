"""The suite's settings: Voltpark's own, with the SSO providers' endpoints pointed at the stand-in
server of tests/accounts/sso_provider.py. Its loopback port is the first free one of SSO_TEST_PORTS,
reserved here (held open for the whole run) because allauth's providers read their endpoints once.
A process started by the suite inherits the endpoints from the environment. The providers stay off
(no client id) except in the tests that switch them on."""

import os

if "SSO_GITHUB_URL" not in os.environ:
    from tests.accounts.sso_provider import reserve_port

    _port = reserve_port(os.environ.get("SSO_TEST_PORTS", "18690-18699"))
    os.environ["SSO_GITHUB_URL"] = f"http://127.0.0.1:{_port}/github"
    os.environ["SSO_GOOGLE_URL"] = f"http://127.0.0.1:{_port}/google"

from voltpark.settings import *  # noqa: E402, F403
