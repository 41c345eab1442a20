"""Journey 1: a new startup signs up, adds an SSH key, books 8 GPUs on demand, watches the lease
start and its charts fill, releases it, and later finds the lease on its invoice.

Everything is real except the GPUs: the live server, Chromium, a Celery worker with beat (sweeps
every second) and the node agent, simulated over loopback HTTP for the seeded fleet.
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

from accounts.models import Organization, SshKey
from billing.models import Invoice
from billing.services.invoicing import month_close
from billing.services.top_ups import top_up_record
from clusters.choices import LeaseKind, LeaseState
from clusters.models import GpuSample, Lease, Node, Region
from clusters.services.booking import lease_book
from clusters.services.fleet import fleet_seed
from core.periods import month_of, next_month
from nodeagent.backends.simulated import SimulatedFleet
from nodeagent.protocol import account_for_lease
from nodeagent.simulator import start_in_thread
from tests.accounts.helpers import ALICE_KEY
from tests.browser.harness import confirm_email, open_page, screenshot
from tests.factories import MembershipFactory, OrganizationFactory
from tests.live import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AGENT_TOKEN = "browser-journey-agent-token"
CHICAGO = "America/Chicago"
WAIT_S = 20


@pytest.fixture
def celery_worker_options() -> dict[str, Any]:
    """Beat sweeps leases, polls the agents and keeps a sample every second (not every few)."""
    env = {
        "LEASE_SWEEP_INTERVAL_S": "1",
        "POLL_INTERVAL_S": "1",
        "TELEMETRY_SAMPLE_INTERVAL_S": "1",
        "LEASE_CLEANUP_INTERVAL_S": "2",
        "EMAIL_URL": "dummy://",
    }
    return {"beat": True, "include": [], "env": env}


@pytest.fixture
def simulated_fleet(transactional_db: None, tmp_path: Path) -> Iterator[SimulatedFleet]:
    """Six nodes (two per region) whose agents are one simulated fleet on a loopback port."""
    port = free_port("BROWSER_AGENT_PORTS", "18550-18599")
    fleet_seed(nodes=6, agent_base=f"http://127.0.0.1:{port}", agent_token=AGENT_TOKEN)
    sim = SimulatedFleet(list(Node.objects.values_list("hostname", flat=True)), tmp_path / "leases")
    _, stop = start_in_thread(sim, token=AGENT_TOKEN, port=port)
    yield sim
    stop()


@pytest.fixture
def page(browser: Any, live_server: Any, page_problems: list[str]) -> Iterator[Any]:
    """The harness's page, in a browser that lives in Chicago (times typed and shown there)."""
    with open_page(browser, live_server.url, page_problems, timezone_id=CHICAGO) as tab:
        yield tab


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def busy_virginia_from_day_two() -> None:
    globex = OrganizationFactory.create(name="Globex Research", gpu_quota=64)
    start = (timezone.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    lease_book(
        user=MembershipFactory.create(organization=globex).user,
        organization=globex,
        region=Region.objects.get(code="us-va-1"),
        gpus=16,
        kind=LeaseKind.RESERVED,
        start=start,
        end=start + timedelta(days=3),
    )


def test_a_startup_books_8_gpus_watches_them_releases_them_and_finds_the_invoice_line(
    page, page_problems, live_server, simulated_fleet, celery_worker, settings
) -> None:
    settings.LEASE_PAGE_REFRESH_S = 1  # the live server runs in this process
    page.goto("/signup/")
    page.get_by_label("Work email").fill("nora@nebula.example")
    page.get_by_label("Your name").fill("Nora Nebula")
    page.get_by_label("Password").fill("a long passphrase for nebula")
    page.get_by_label("Organization").fill("Nebula Labs")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{live_server.url}/welcome/")
    confirm_email(page, "nora@nebula.example")  # booking waits for a verified address

    main_nav = page.get_by_role("navigation", name="Main")
    main_nav.get_by_role("link", name="SSH keys").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Public key").fill(ALICE_KEY)
    page.get_by_role("button", name="Add key").click()
    page.get_by_role("status").filter(has_text="Key laptop added").wait_for()

    # Another organization holds all of Virginia for three days next week: the calendar shows it.
    busy_virginia_from_day_two()
    # A new organization pays before it books: here a bank transfer staff recorded (the journey
    # through Stripe's pages is tests/browser/test_paying_journey.py).
    top_up_record(
        organization=Organization.objects.get(name="Nebula Labs"),
        amount=Decimal("100.00"),
        external_id="journey-bank-transfer",
        description="Bank transfer",
    )

    # Book: the check follows the form as it changes (htmx), then the form books.
    main_nav.get_by_role("link", name="Book GPUs").click()
    check = page.locator("#booking-check")
    assert "$19.92 per hour" in check.inner_text()  # 8 GPUs × $2.49, filled in on the first view
    gpus = page.get_by_label("GPUs", exact=True)
    gpus.fill("")
    gpus.press_sequentially("5")
    check.get_by_text("Book 1, 2, 4 or 8 GPUs").wait_for()
    gpus.fill("")
    gpus.press_sequentially("8")
    check.get_by_text("$19.92 per hour").wait_for()
    page.get_by_label("Reserved").check()
    page.get_by_label("Start").wait_for()  # the reserved-only fields show for a reserved lease
    assert page.locator("input[name=tz]").input_value() == CHICAGO
    page.get_by_label("On-demand").check()
    assert page.get_by_label("Start").is_hidden()
    page.get_by_label("laptop").check()
    check.get_by_text("8 GPUs can be placed").wait_for()
    screenshot(page, "10-booking")
    screenshot(page, "10-booking-phone", phone=True)
    page.get_by_role("button", name="Book").click()
    page.wait_for_url(re.compile(r"/leases/[0-9a-f-]{36}/$"))
    lease = Lease.objects.get(organization__name="Nebula Labs")
    assert (lease.gpus, lease.kind, lease.ssh_public_keys) == (
        8,
        "on_demand",
        [SshKey.objects.get().public_key],
    )

    # The worker starts it (keys installed on the agent), polls the GPUs, and the page follows.
    page.locator('#lease-live [data-state="active"]').wait_for(timeout=WAIT_S * 1000)
    node = lease.allocations.first().node.hostname
    account = account_for_lease(str(lease.public_id))
    assert page.get_by_text(f"ssh {account}@{node}").is_visible()
    keys = simulated_fleet.lease_root / node / account / ".ssh" / "authorized_keys"
    assert keys.read_text().strip() == ALICE_KEY.strip()
    wait_until(lambda: GpuSample.objects.filter(gpu__allocations__lease=lease).count() >= 8 * 8, "samples")
    page.locator("#lease-live .charts svg").nth(3).wait_for(timeout=WAIT_S * 1000)
    wait_until(
        lambda: int(page.locator("#lease-live .charts").get_attribute("data-samples")) >= 8 * 3, "charts"
    )
    assert page.locator("#lease-live .charts polyline").count() >= 4 * 8
    screenshot(page, "11-lease-active")
    screenshot(page, "11-lease-active-phone", phone=True)

    # Release, after a confirmation that states what it costs.
    page.get_by_role("link", name="Release now…").click()
    effect = page.locator("#cost-effect").inner_text()
    assert re.search(rf"Releasing now stops billing at \d\d:\d\d \({CHICAGO}\); you will have used", effect)
    assert re.search(r"[\d.]+ GPU-hours ≈ \$[\d.]+ at \$2\.49 per GPU-hour", effect)
    screenshot(page, "12-release-confirmation")
    page.get_by_role("button", name="Release now").click()
    page.get_by_role("status").filter(has_text="Billing stopped at").wait_for()
    page.locator('#lease-live [data-state="ended"]').wait_for(timeout=WAIT_S * 1000)
    wait_until(lambda: not keys.exists(), "the agent to revoke the lease's keys")
    lease.refresh_from_db()
    assert lease.state == LeaseState.ENDED and lease.ended_at is not None

    # Later: the month closes, and the lease is a line of the invoice.
    this_month = month_of(timezone.now())
    month_close(period_start=this_month, now=next_month(this_month))
    invoice = Invoice.objects.get(organization=lease.organization)
    main_nav.get_by_role("link", name="Billing").click()
    row = page.locator(f'tr[data-invoice="{invoice.number}"]')
    assert f"${invoice.total}" in row.inner_text()
    screenshot(page, "13-billing")
    row.get_by_role("link", name=invoice.number, exact=True).click()
    line = page.locator(f'tr[data-lease="{lease.public_id}"]')
    assert "8" in line.inner_text() and f"${invoice.lines.get(lease=lease).amount}" in line.inner_text()
    screenshot(page, "14-invoice")
    screenshot(page, "14-invoice-phone", phone=True)
    assert page_problems == [], page_problems
