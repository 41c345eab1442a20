"""Journey: a new founder pays before booking and is stopped when the money runs out.

They sign up and verify their address, add a card and top up $100 on Stripe's hosted pages, book
8 GPUs on demand, and watch the billing page's balance, spend rate and runway move. When the
balance is gone the lease keeps running for the grace period, is then released, and the founder
is emailed both times.

Real: the live server, Chromium, a Celery worker with beat (debits, balance sweeps and lease
sweeps every second; its mail goes to its log), the node agents simulated over loopback HTTP.
Stripe is the loopback fake of tests/billing/stripe_server.py (localstripe plus Checkout's hosted
page, which sends the signed webhook as Stripe does). Five hours of use are played by moving the
lease's start back: the debits are computed from its allocation periods, as billing always does.
"""

import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from psycopg2.extras import DateTimeTZRange

from billing.choices import LedgerKind, TopUpMethod
from billing.models import BillingAccount, LedgerEntry, TopUp
from clusters.models import Allocation, Lease, Node
from clusters.services.fleet import fleet_seed
from core.periods import month_of
from nodeagent.backends.simulated import SimulatedFleet
from nodeagent.simulator import start_in_thread
from tests.accounts.helpers import ALICE_KEY
from tests.browser.harness import confirm_email, screenshot
from tests.live import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AGENT_TOKEN = "paying-journey-agent-token"
WEBHOOK_SECRET = "whsec_paying_journey"
FOUNDER = "pia@pico.example"
# How long to wait for the worker (sweeps every second) to do something: generous, because on a
# machine shared with other test suites a sweep can lag well behind its schedule; each wait ends
# as soon as its condition holds.
WAIT_S = 90
GRACE_MINUTES = 1
PLAYED = timedelta(hours=5, minutes=10)  # of use, played back: $102.92 at $19.92 an hour


@pytest.fixture
def celery_worker_options(stripe_fake: Any) -> dict[str, Any]:
    """Debits and balance sweeps every second, a one-minute grace, Stripe on the fake, mail in the log."""
    env = {
        "LEASE_SWEEP_INTERVAL_S": "1",
        "LEASE_CLEANUP_INTERVAL_S": "2",
        "USAGE_DEBIT_INTERVAL_S": "1",
        "BALANCE_SWEEP_INTERVAL_S": "1",
        "RUN_OUT_GRACE_MINUTES": str(GRACE_MINUTES),
        "EMAIL_URL": "console://",
        "STRIPE_ENABLED": "true",
        "STRIPE_SECRET_KEY": "sk_test_paying_journey",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe_fake.url,
    }
    return {"beat": True, "include": [], "env": env}


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[Any]:
    from localstripe import resources

    from tests.billing.stripe_server import FakeStripe

    resources.Store.dump_to_disk = lambda self: None  # its /tmp pickle is shared by every process
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture
def stripe_fake(stripe_server: Any, live_server: Any, settings: Any) -> Any:
    """Stripe on for the live server (this process), its hosted pages sending webhooks back to it."""
    stripe_server.reset()
    stripe_server.webhook_url = f"{live_server.url}/api/v1/stripe/webhook/"
    stripe_server.webhook_secret = WEBHOOK_SECRET
    settings.STRIPE_ENABLED = True
    settings.STRIPE_SECRET_KEY = "sk_test_paying_journey"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.url
    settings.SITE_URL = live_server.url
    return stripe_server


@pytest.fixture
def simulated_fleet(transactional_db: None, tmp_path: Path) -> Iterator[SimulatedFleet]:
    """Six nodes (two per region) whose agents are one simulated fleet on a loopback port."""
    port = free_port("BROWSER_AGENT_PORTS", "18550-18599")
    fleet_seed(nodes=6, agent_base=f"http://127.0.0.1:{port}", agent_token=AGENT_TOKEN)
    sim = SimulatedFleet(list(Node.objects.values_list("hostname", flat=True)), tmp_path / "leases")
    _, stop = start_in_thread(sim, token=AGENT_TOKEN, port=port)
    yield sim
    stop()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


# Django's console mail backend ends every message with this line.
END_OF_MESSAGE = "\n" + "-" * 79 + "\n"


def worker_mail(tmp_path: Path, subject: str) -> list[str]:
    """The messages with `subject` the worker sent (its console mail backend writes them to its log),
    whole ones only: the log may be read while a message is half written."""
    log = (tmp_path / "celery-worker.log").read_text(errors="replace")
    written = log[: log.rfind(END_OF_MESSAGE) + 1] if END_OF_MESSAGE in log else ""
    return [m for m in written.split("Content-Type: text/plain") if f"Subject: {subject}" in m]


def card_of(page: Any, field: str) -> str:
    return page.locator(f'[data-field="{field}"]').inner_text()


def played_back(lease: Lease, played: timedelta) -> None:
    """The lease has run for `played`: its start and its allocations' periods moved back."""
    start = timezone.now() - played
    for allocation in Allocation.objects.filter(lease=lease):
        allocation.period = DateTimeTZRange(start, allocation.period.upper, "[)")
        allocation.save(update_fields=["period"])
    Lease.objects.filter(pk=lease.pk).update(start=start, started_at=start)


def test_a_founder_adds_a_card_tops_up_books_and_is_released_when_the_balance_runs_out(
    page, page_problems, live_server, stripe_fake, simulated_fleet, celery_worker, tmp_path
) -> None:
    if month_of(timezone.now() - PLAYED - timedelta(minutes=10)) != month_of(timezone.now()):
        # Use played back into last month is never debited by this month's runs (in production it
        # was debited as it ran, last month): the journey needs its five hours in one month.
        pytest.skip("the five hours played back would cross the start of the month")
    page.set_default_timeout(WAIT_S * 1000)  # pages wait on the worker's and the fake Stripe's turns
    page.goto("/signup/")
    page.get_by_label("Work email").fill(FOUNDER)
    page.get_by_label("Your name").fill("Pia Pico")
    page.get_by_label("Password").fill("a long passphrase for pico")
    page.get_by_label("Organization").fill("Pico Labs")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{live_server.url}/welcome/")
    confirm_email(page, FOUNDER)
    main_nav = page.get_by_role("navigation", name="Main")
    # A key first: booking refuses a booker without one (tests/browser/test_booking_journey.py).
    main_nav.get_by_role("link", name="SSH keys").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Public key").fill(ALICE_KEY)
    page.get_by_role("button", name="Add key").click()
    page.get_by_role("status").filter(has_text="Key laptop added").wait_for()

    # Nothing to pay with yet: booking says what to do and links to billing.
    main_nav.get_by_role("link", name="Book GPUs").click()
    page.get_by_label("GPUs", exact=True).fill("8")
    page.get_by_role("button", name="Book").click()
    page.get_by_role("link", name="Add a card or top up on the billing page").click()
    page.wait_for_url(f"{live_server.url}/billing/")
    assert "No card on file" in card_of(page, "card")

    # A card, saved on Stripe's hosted page (setup mode); Stripe's webhook and the return both report it.
    page.get_by_role("button", name="Add a card").click()
    page.wait_for_url(f"{stripe_fake.url}/pay/*")
    assert page.get_by_role("heading", name="Save your card").is_visible()
    page.get_by_role("button", name="Save your card").click()
    page.wait_for_url(re.compile(r"/billing/\?stripe=card_saved&session=cs_test_"))
    assert card_of(page, "card").startswith("Visa ending 4242")
    # A first card turns on automatic top-up; this founder would rather be stopped than charged.
    assert page.get_by_label("Top up when below (USD)").input_value() == "25.00"
    page.get_by_label("Top up when below (USD)").fill("")
    page.get_by_label("Top up by (USD)").fill("")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text="Spend settings saved.").wait_for()

    # $100 on Stripe's hosted page (payment mode).
    page.get_by_label("Amount (USD)").fill("100")
    page.get_by_role("button", name="Top up on Stripe").click()
    page.wait_for_url(f"{stripe_fake.url}/pay/*")
    page.get_by_role("button", name="Pay $100.00").click()
    page.wait_for_url(re.compile(r"/billing/\?stripe=paid&session=cs_test_"))
    assert card_of(page, "balance") == "$100.00"
    assert (card_of(page, "spend-rate"), card_of(page, "runway")) == ("$0.00/h", "—")
    organization = BillingAccount.objects.get(organization__name="Pico Labs").organization
    assert LedgerEntry.objects.filter(organization=organization, kind=LedgerKind.TOP_UP).count() == 1
    screenshot(page, "20-billing-topped-up")

    # Book 8 GPUs on demand: the worker starts the lease on its node.
    main_nav.get_by_role("link", name="Book GPUs").click()
    page.get_by_label("GPUs", exact=True).fill("8")
    page.get_by_label("On-demand").check()
    page.get_by_role("button", name="Book").click()
    page.wait_for_url(re.compile(r"/leases/[0-9a-f-]{36}/$"))
    page.locator('#lease-live [data-state="active"]').wait_for(timeout=WAIT_S * 1000)
    lease = Lease.objects.get(organization=organization)

    # The billing page: $19.92 an hour (8 × $2.49) and about five hours of runway.
    main_nav.get_by_role("link", name="Billing").click()
    assert card_of(page, "spend-rate") == "$19.92/h"
    assert re.fullmatch(r"[45]\shours?(,\s\d+\sminutes?)?", card_of(page, "runway")), card_of(page, "runway")
    assert Decimal(card_of(page, "balance").lstrip("$")) <= Decimal("100.00")
    screenshot(page, "21-billing-running")
    screenshot(page, "21-billing-running-phone", phone=True)

    # Five hours and ten minutes later ($102.92 of use): the balance is gone. The worker debits it,
    # emails the founder and gives the lease the grace period before releasing it.
    played_back(lease, PLAYED)
    ran_out = "Voltpark: your balance has run out"
    wait_until(lambda: bool(worker_mail(tmp_path, ran_out)), "the ran-out email")
    # The sweep counts usage not debited yet, so it may see the money gone before the debit lands.
    account = BillingAccount.objects.get(organization=organization)
    wait_until(lambda: BillingAccount.objects.get(pk=account.pk).balance < 0, "the usage debited")
    assert account.exhausted_at is not None
    assert FOUNDER in worker_mail(tmp_path, ran_out)[0]
    page.reload()
    assert "Your balance has run out" in page.get_by_role("alert").inner_text()
    # Not released within the grace period (when exactly after it is up to the sweeps).
    still = Lease.objects.get(pk=lease.pk)
    grace = timedelta(minutes=GRACE_MINUTES)
    assert still.end is None or still.end - account.exhausted_at >= grace
    screenshot(page, "22-billing-ran-out")

    released = "Voltpark: on-demand leases released"
    wait_until(
        lambda: bool(worker_mail(tmp_path, released)), "the release", timeout=GRACE_MINUTES * 60 + WAIT_S
    )
    lease.refresh_from_db()
    assert lease.end is not None and account.exhausted_at is not None
    assert lease.end - account.exhausted_at >= grace
    [email] = worker_mail(tmp_path, released)
    assert FOUNDER in email and str(lease.public_id) in email
    # Nothing was charged to the card behind the founder's back.
    assert not TopUp.objects.filter(organization=organization, method=TopUpMethod.AUTO).exists()
    page.goto(f"/leases/{lease.public_id}/")
    page.locator('#lease-live [data-state="ended"]').wait_for(timeout=WAIT_S * 1000)
    assert page_problems == [], page_problems
