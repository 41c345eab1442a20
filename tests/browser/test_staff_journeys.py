"""Journeys of staff: an admin approves an early-stage startup, which then books the early-stage pool;
the admin drains a node; finance closes a month and downloads the three exports, which parse."""

import csv
import io
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from django.utils import timezone
from openpyxl import load_workbook

from accounts.choices import Role
from accounts.models import Organization
from accounts.services.tokens import api_token_create
from billing.models import CreditGrant, Invoice, InvoicePdf, MonthClose
from billing.selectors.focus import FOCUS_COLUMNS
from clusters.choices import NodeState, Pool
from clusters.models import Allocation, Node
from clusters.services.fleet import fleet_seed
from clusters.services.telemetry import fleet_poll
from core.periods import previous_month
from nodeagent.backends.simulated import SimulatedFleet
from nodeagent.simulator import start_in_thread
from programs.choices import ApplicationStatus
from programs.models import EarlyStageApplication
from programs.services.early_stage import early_stage_apply
from tests.billing.factories import make_lease
from tests.billing.helpers import FOCUS_REQUIRED
from tests.browser.harness import screenshot
from tests.factories import STAFF_TOTP_SECRET, MembershipFactory, OrganizationFactory, UserFactory, mfa_enable
from tests.live import free_port
from tests.races import in_own_thread

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
AGENT_TOKEN = "journey-agent-token"


@pytest.fixture
def simulated_fleet(tmp_path: Path) -> Iterator[SimulatedFleet]:
    """Twelve nodes (four a region, one of them early-stage) whose agents answer over loopback HTTP."""
    port = free_port("BROWSER_AGENT_PORTS", "18600-18649")
    fleet_seed(nodes=12, agent_base=f"http://127.0.0.1:{port}", agent_token=AGENT_TOKEN)
    sim = SimulatedFleet(list(Node.objects.values_list("hostname", flat=True)), tmp_path / "leases")
    _, stop = start_in_thread(sim, token=AGENT_TOKEN, port=port)
    yield sim
    stop()


def poll_fleet() -> None:
    """The real poll, in a thread of its own: Playwright's event loop occupies this one."""
    in_own_thread(fleet_poll)


def log_in(page: Any, email: str) -> None:
    """Log in as a staff member: password, then the code of their authenticator app."""
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Code", exact=True).fill(pyotp.TOTP(STAFF_TOTP_SECRET).now())
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(re.compile(r"^http://[^/]+/$"))


def book(live_server: Any, secret: str, **body: object) -> dict[str, Any]:
    response = httpx.post(
        f"{live_server.url}/api/v1/leases/", json=body, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 201, response.text
    return response.json()


def pools_of(lease_id: str) -> set[str]:
    return set(Allocation.objects.filter(lease__public_id=lease_id).values_list("node__pool", flat=True))


def test_an_admin_approves_a_startup_which_then_books_the_early_stage_pool(  # noqa: PLR0915
    page, page_problems, live_server, simulated_fleet
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    simulated_fleet.set_fault("tx1-c01-n002", "xid", gpu_index=5, code=79)
    poll_fleet()  # the real poll: readings on every GPU, and n002 fails the XID rule
    nebula = OrganizationFactory.create(name="Nebula Labs", slug="nebula-labs")
    nora = MembershipFactory.create(
        user__email="nora@nebula.example", organization=nebula, role=Role.OWNER
    ).user
    early_stage_apply(
        actor=nora,
        organization=nebula,
        what_we_build="Weather models that run on a laptop after training.",
        stage="pre_seed",
        funding="$600k from a climate fund",
        gpus_wanted=16,
        why="Our first training run needs 16 GPUs for two weeks.",
    )
    secret = api_token_create(user=nora, organization=nebula, name="ci").secret
    before = book(live_server, secret, region="us-tx-1", gpus=8, kind="on_demand")
    assert pools_of(before["id"]) == {Pool.GENERAL}  # not approved yet: the general pool only

    mfa_enable(UserFactory.create(email="ada@voltpark.example", full_name="Ada Admin", is_staff=True))
    log_in(page, "ada@voltpark.example")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Early-stage queue").click()
    card = page.locator('article[data-application="nebula-labs"]')
    assert "$600k from a climate fund" in card.inner_text()
    screenshot(page, "staff-01-early-stage-queue")
    approve = card.get_by_role("form", name="Approve Nebula Labs")
    approve.get_by_label("GPU quota").fill("16")
    approve.get_by_label("Credit (USD)").fill("2000")
    approve.get_by_label("Credit expires on").fill((timezone.now() + timedelta(days=180)).date().isoformat())
    approve.get_by_label("Note to the applicant").fill("Welcome; the early-stage pool is yours first.")
    approve.scroll_into_view_if_needed()
    screenshot(page, "staff-02-approve-form")
    approve.get_by_role("button", name="Approve").click()
    assert page.get_by_role("status").filter(has_text="Nebula Labs is approved").is_visible()
    assert page.locator('#decided tr[data-application="nebula-labs"]').inner_text().count("Approved") == 1

    nebula.refresh_from_db()
    assert (nebula.early_stage_approved, nebula.gpu_quota) == (True, 16)
    assert EarlyStageApplication.objects.get(organization=nebula).status == ApplicationStatus.APPROVED
    assert CreditGrant.objects.get(organization=nebula).amount == 2000
    start = (timezone.now() + timedelta(hours=1)).replace(second=0, microsecond=0)
    after = book(
        live_server,
        secret,
        region="us-tx-1",
        gpus=8,
        kind="reserved",
        start=start.isoformat(),
        end=(start + timedelta(hours=4)).isoformat(),
    )
    assert pools_of(after["id"]) == {Pool.EARLY_STAGE}
    assert Node.objects.get(hostname=after["nodes"][0]["hostname"]).pool == Pool.EARLY_STAGE

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Fleet").click()
    sick = page.locator('a[data-node="tx1-c01-n002"]')
    assert sick.get_attribute("data-state") == NodeState.UNHEALTHY
    assert "GPU 5 reported XID 79." in page.locator("#health-events").inner_text()
    screenshot(page, "staff-03-fleet")
    screenshot(page, "staff-04-fleet-phone", phone=True)

    page.locator('a[data-node="tx1-c01-n003"]').click()
    assert page.locator('tr[data-gpu="0"]').inner_text().count("°C") == 1  # a reading from the poll
    page.get_by_label("Reason").fill("Swapping a PSU")
    page.get_by_role("button", name="Drain node").click()
    assert page.get_by_role("status").filter(has_text="tx1-c01-n003 is draining").is_visible()
    screenshot(page, "staff-05-node")
    node = Node.objects.get(hostname="tx1-c01-n003")
    assert (node.state, node.state_reason) == (NodeState.DRAINING, "Swapping a PSU")
    assert page_problems == [], page_problems


@pytest.fixture
def celery_worker_options() -> dict[str, object]:
    return {"beat": False, "include": []}


def download(page: Any, label: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_role("link", name=label).click()
    return Path(info.value.path()).read_bytes()


def test_finance_closes_a_month_and_downloads_the_three_exports(
    page, page_problems, live_server, celery_worker
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    month = previous_month()
    for name, gpus, hours in [("Acme AI", 8, 10), ("Globex Research", 2, 30), ("Initech", 4, 6)]:
        organization = OrganizationFactory.create(name=name)
        start = month + timedelta(days=3)
        make_lease(organization=organization, start=start, end=start + timedelta(hours=hours), gpus=gpus)
    mfa_enable(
        UserFactory.create(email="fay@voltpark.example", full_name="Fay Finance", is_finance_staff=True)
    )

    log_in(page, "fay@voltpark.example")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Finance").click()
    row = page.locator(f'tr[data-month="{month:%Y-%m}"]')
    assert "not closed" in row.inner_text()
    page.get_by_label("Month to close").select_option(f"{month:%Y-%m}")
    page.get_by_role("button", name="Close month").click()
    assert page.get_by_role("status").filter(has_text=f"{month:%B %Y} is closed: 3 invoices").is_visible()
    assert "✓ closed" in row.inner_text() and row.locator('[data-field="invoices"]').inner_text() == "3"
    assert MonthClose.objects.get(period_start=month).invoices_created == 3
    assert page.locator("#revenue").inner_text().count(f"{month:%Y-%m}") == 1
    assert page.locator("svg.chart rect.bar").count() >= 1
    screenshot(page, "staff-06-finance")
    screenshot(page, "staff-07-finance-phone", phone=True)

    invoices = list(csv.DictReader(io.StringIO(download(page, "Invoices (CSV)").decode("utf-8"))))
    numbers = set(Invoice.objects.filter(period_start=month).values_list("number", flat=True))
    assert {row["number"] for row in invoices} == numbers and len(numbers) == 3
    sheet = load_workbook(io.BytesIO(download(page, "Invoices (XLSX)")), read_only=True).active
    cells = list(sheet.iter_rows(values_only=True))
    header = list(cells[0])
    assert {r[header.index("number")] for r in cells[1:]} == numbers
    focus = list(csv.DictReader(io.StringIO(download(page, "FOCUS cost and usage (CSV)").decode("utf-8"))))
    assert focus and set(focus[0]) == set(FOCUS_COLUMNS) and set(focus[0]) >= FOCUS_REQUIRED
    assert sum(float(row["PricingQuantity"]) for row in focus) == pytest.approx(8 * 10 + 2 * 30 + 4 * 6)

    deadline = time.monotonic() + 20  # the worker renders each finalized invoice's PDF
    while InvoicePdf.objects.count() < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert InvoicePdf.objects.count() == 3
    assert Organization.objects.count() == 3 and page_problems == []
