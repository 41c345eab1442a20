"""The pages as people use them, in Chromium: the booking form on a phone (the check before Book),
errors that follow the form, a pasted value checked at once; lease charts readable on a phone; an
SSH command that never breaks inside its account name; destructive buttons that can be read."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.choices import Role
from accounts.services.organizations import invitation_create
from accounts.services.ssh_keys import ssh_key_add
from accounts.services.tokens import api_token_create
from clusters.models import Lease, Node
from clusters.services.fleet import fleet_seed
from tests.accounts.helpers import ALICE_KEY
from tests.browser.harness import PHONE, accessibility_problems, log_in_as
from tests.clusters.helpers import active_lease, add_samples, gpus_of, lease_on
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def alice(live_server: Any) -> Any:
    fleet_seed(nodes=6)
    acme = OrganizationFactory.create(name="Acme AI", slug="acme-ai")
    owner = MembershipFactory.create(
        user__email="alice@acme.example", organization=acme, role=Role.OWNER
    ).user
    MembershipFactory.create(user__email="bob@acme.example", organization=acme, role=Role.MEMBER)
    ssh_key_add(user=owner, public_key=ALICE_KEY)
    return owner


def box(page: Any, selector: str) -> dict[str, float]:
    return page.locator(selector).first.bounding_box()


def test_on_a_phone_the_check_comes_before_book_and_errors_follow_the_form(page, live_server, alice) -> None:
    log_in_as(page, live_server.url, alice)
    page.set_viewport_size(PHONE)
    page.goto("/book/")
    assert box(page, "#booking-check")["y"] < box(page, "button[form=booking-form]")["y"]
    page.get_by_label("Reserved").check()
    start_label = page.locator("label[for=id_start]").inner_text()
    assert "optional" not in start_label and "optional" not in page.locator("label[for=id_end]").inner_text()
    page.get_by_label("On-demand").check()

    # A refused submit (over the quota of 8) puts its error under GPUs ...
    gpus = page.get_by_label("GPUs", exact=True)
    gpus.fill("16")
    page.get_by_role("button", name="Book", exact=True).click()
    page.wait_for_load_state()
    assert "quota is 8" in page.locator("#field-errors-gpus").inner_text()
    # ... a pasted value (no key pressed) is checked at once, and the old error gives way.
    page.get_by_label("GPUs", exact=True).fill("4")
    page.locator("#booking-check").get_by_text("4 GPUs can be placed").wait_for()
    assert page.locator("#field-errors-gpus").inner_text() == ""
    fits = page.locator('[data-field="fits"]').inner_text()
    assert fits.startswith("Yes")


def test_over_quota_the_panel_says_no_and_offers_to_ask_for_more(page, live_server, alice) -> None:
    log_in_as(page, live_server.url, alice)
    page.goto("/book/")
    page.get_by_label("GPUs", exact=True).fill("16")
    link = page.locator("#booking-check").get_by_role("link", name="Ask for more quota")
    link.wait_for()
    assert page.locator('[data-field="fits"]').inner_text().startswith("No")
    link.click()
    page.wait_for_url(f"{live_server.url}/organization/quota/?gpus=16")
    assert page.get_by_label("GPUs you need at once").input_value() == "16"
    page.get_by_label("What they are for").fill("A 16-GPU run next week.")
    page.get_by_role("button", name="Send the request").click()
    page.get_by_role("status").filter(has_text="Request sent").wait_for()


def test_lease_charts_read_on_a_phone_and_the_ssh_command_keeps_its_account_whole(
    page, live_server, alice
) -> None:
    nodes = list(Node.objects.order_by("hostname"))
    lease = active_lease(nodes, organization=alice.memberships.get().organization, booked_by=alice)
    add_samples(
        lease, since=timezone.now() - timedelta(minutes=30), every=timedelta(minutes=1), utilization=60
    )
    log_in_as(page, live_server.url, alice)
    page.set_viewport_size(PHONE)
    page.goto(f"/leases/{lease.public_id}/")
    tick = page.locator("svg.chart g.axis text").first.bounding_box()
    assert tick["height"] >= 10, f"tick labels are {tick['height']:.1f} px tall on a phone"
    legend = page.locator("ul.chart-legend li").first.bounding_box()
    assert legend["height"] >= 12
    # The account name (before the @) sits on one line, however narrow the column.
    lines = page.evaluate(
        """() => {
          // The command's last word, account@node (its words are spans laid out whole).
          const words = document.querySelectorAll("code.command .nowrap");
          const target = words[words.length - 1];
          return new Set([...target.getClientRects()].map((r) => Math.round(r.top))).size;
        }"""
    )
    assert lines == 1
    # Hovering a point shows its value.
    assert "GPU 0 at" in page.locator("svg.chart circle.point title").first.text_content()


def test_destructive_buttons_are_readable_red_text_not_red_on_red(page, live_server, alice) -> None:
    acme = alice.memberships.get().organization
    invitation_create(actor=alice, organization=acme, email="omar@acme.example", role=Role.MEMBER)
    api_token_create(user=alice, organization=acme, name="ci")
    log_in_as(page, live_server.url, alice)
    for path, name in [
        ("/account/ssh-keys/", "Remove"),
        ("/account/tokens/", "Revoke"),
        ("/organization/", "Revoke"),
        ("/organization/", "Remove"),
    ]:
        page.goto(path)
        button = page.locator("button.danger").filter(has_text=name).first
        color, background = button.evaluate(
            "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]"
        )
        assert color == "rgb(185, 28, 28)" and background in ("rgba(0, 0, 0, 0)", "transparent"), (
            path,
            name,
            color,
            background,
        )


def test_a_full_fleet_offers_on_demand_until_the_next_reservation_and_books_it_with_automatic_replacement(
    page, live_server, alice
) -> None:
    globex = OrganizationFactory.create(name="Globex", slug="globex", gpu_quota=1000)
    holder = MembershipFactory.create(organization=globex, role=Role.OWNER).user
    now = timezone.now().replace(second=0, microsecond=0)
    for i, node in enumerate(Node.objects.order_by("hostname")):
        start = now + timedelta(hours=3 + i)
        lease_on(
            gpus_of(node), organization=globex, booked_by=holder, start=start, end=start + timedelta(hours=2)
        )
    log_in_as(page, live_server.url, alice)
    page.goto("/book/")
    page.get_by_label("Reserved").check()
    assert not page.get_by_label("Until").is_visible()
    page.get_by_label("On-demand").check()
    assert page.get_by_label("Until").is_visible()
    page.get_by_label("If a node fails while the lease runs, book a replacement at once").check()
    # The check is redrawn with the box ticked: its buttons carry it.
    page.locator("[data-on-demand-until] input[name=replace_automatically]").first.wait_for(state="attached")
    assert accessibility_problems(page) == []
    button = page.locator("[data-on-demand-until] button").first
    region_code, until = button.get_attribute("data-until").split(" ")
    assert button.inner_text().startswith("Book on-demand now in ")
    button.click()
    page.wait_for_url(re.compile(r"/leases/[0-9a-f-]+/$"))
    lease = Lease.objects.get(organization=alice.memberships.get().organization)
    assert (lease.kind, lease.region.code, lease.end.isoformat()) == ("on_demand", region_code, until)
    assert lease.replace_automatically
    assert page.get_by_text("If a node fails, a replacement is booked at once").is_visible()
