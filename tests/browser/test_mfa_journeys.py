"""Journeys: a staff admin signs in with a code from an authenticator app, then adds a passkey in
Chromium's virtual authenticator and signs in with it alone; a staff admin without a second factor
is sent to set one up (no staff page or API answers before), then signs in with a recovery code."""

import pyotp
import pytest
from allauth.mfa.models import Authenticator

from accounts.models import AuditEntry
from tests.browser.harness import open_page
from tests.factories import STAFF_TOTP_SECRET, UserFactory, mfa_enable

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
# A platform authenticator that holds resident keys and verifies its user (a PIN or a fingerprint),
# answering at once: what a laptop's passkey store does once the person has touched it.
VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


def log_in_with_code(page, email: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Code", exact=True).fill(pyotp.TOTP(STAFF_TOTP_SECRET).now())
    page.get_by_role("button", name="Sign In").click()


def test_a_staff_admin_signs_in_with_a_code_from_the_authenticator_app(
    page, page_problems, live_server
) -> None:
    ada = mfa_enable(UserFactory.create(email="ada@voltpark.example", full_name="Ada Admin", is_staff=True))
    page.goto("/staff/fleet/")
    page.wait_for_url("**/login/?next=/staff/fleet/")
    log_in_with_code(page, ada.email)
    page.wait_for_url(f"{live_server.url}/staff/fleet/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Fleet")
    assert AuditEntry.objects.get(action="user.login", actor=ada).after["method"] == "password,mfa"
    assert page_problems == [], page_problems


def test_a_staff_admin_adds_a_passkey_and_signs_in_with_it_alone(browser, live_server, page_problems) -> None:
    ada = mfa_enable(UserFactory.create(email="ada@voltpark.example", full_name="Ada Admin", is_staff=True))
    # A passkey belongs to a site name: WebAuthn refuses an IP address, so the page is on localhost.
    base = live_server.url.replace("127.0.0.1", "localhost")
    with open_page(browser, base, page_problems) as page:
        cdp = page.context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})

        page.goto("/login/")
        log_in_with_code(page, ada.email)
        page.wait_for_url(f"{base}/")
        page.goto("/2fa/webauthn/add/")
        # allauth asks for the password again before any change of a second factor.
        page.wait_for_url("**/reauthenticate/**")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_url("**/2fa/webauthn/add/")
        page.get_by_label("Name").fill("laptop")
        page.get_by_label("Passwordless").check()
        page.get_by_role("button", name="Add").click()
        page.get_by_role("status").filter(has_text="Security key added").wait_for()
        passkey = Authenticator.objects.get(user=ada, type=Authenticator.Type.WEBAUTHN)
        assert passkey.wrap().is_passwordless
        assert AuditEntry.objects.filter(action="mfa.add", actor=ada, after__type="webauthn").exists()

        page.context.clear_cookies()
        page.goto("/login/")
        page.get_by_role("button", name="Sign in with a passkey").click()
        page.wait_for_url(f"{base}/")
        page.goto("/staff/fleet/")
        assert page.get_by_role("heading", level=1).inner_text().startswith("Fleet")
        last = AuditEntry.objects.filter(action="user.login", actor=ada).latest("at")
        assert last.after["method"] == "mfa"
    assert page_problems == [], page_problems


def test_a_staff_admin_without_mfa_sets_it_up_then_signs_in_with_a_recovery_code(
    page, page_problems, live_server
) -> None:
    sam = UserFactory.create(email="sam@voltpark.example", full_name="Sam Staff", is_staff=True)
    page.goto("/staff/fleet/")
    page.get_by_label("Email").fill(sam.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/2fa/")
    assert "staff pages need two-factor authentication" in page.content()

    # Neither another staff page nor the staff API answers yet; the API says why.
    page.goto("/staff/leases/")
    page.wait_for_url(f"{live_server.url}/2fa/")
    api = page.request.get(f"{live_server.url}/api/v1/nodes/")
    assert api.status == 403 and api.json()["code"] == "mfa_required"

    page.get_by_role("link", name="Activate").click()
    # allauth asks for the password again before any change of a second factor.
    page.wait_for_url("**/reauthenticate/**")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/2fa/totp/activate/")
    secret = page.locator("#authenticator_secret").input_value()
    page.get_by_label("Authenticator code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url("**/2fa/recovery-codes/")
    codes = page.locator("#recovery_codes").input_value().split()
    assert len(codes) == 10

    page.goto("/staff/fleet/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Fleet")
    assert page.request.get(f"{live_server.url}/api/v1/nodes/").status == 200

    # Phone lost: the password and one recovery code sign in.
    page.context.clear_cookies()
    page.goto("/login/")
    page.get_by_label("Email").fill(sam.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Code", exact=True).fill(codes[0])
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(f"{live_server.url}/")
    page.goto("/staff/fleet/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Fleet")
    assert (
        Authenticator.objects.get(user=sam, type=Authenticator.Type.RECOVERY_CODES).wrap().get_unused_codes()
        == codes[1:]
    )
    assert page_problems == [], page_problems
