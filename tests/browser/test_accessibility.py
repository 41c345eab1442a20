"""Every page passes axe-core (from npm, run in the page by the harness) with no serious or critical
violation, at desktop width and on a phone (390x844): as a visitor, an owner with leases, invoices
and an application, a finance member, a staff admin and staff finance."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.choices import Role
from accounts.services.organizations import invitation_create
from accounts.services.ssh_keys import ssh_key_add
from accounts.services.tokens import api_token_create
from billing.models import Invoice
from billing.services.invoicing import month_close
from clusters.choices import LeaseState
from clusters.models import Lease, Node
from clusters.services.fleet import fleet_seed
from core.periods import previous_month
from programs.services.early_stage import early_stage_apply
from programs.services.quota_requests import quota_request_create
from tests.accounts.helpers import ALICE_KEY
from tests.billing.factories import make_lease
from tests.browser.harness import accessibility_problems, log_in_as
from tests.clusters.helpers import active_lease, add_samples
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, mfa_enable

pytestmark = pytest.mark.browser


@pytest.fixture
def world(live_server: Any) -> dict[str, Any]:
    """A fleet; Acme (owner Alice, finance Fiona) with an active lease carrying readings, an ended one,
    last month's invoice, an invitation, a key and a token; Nebula's application; two staff."""
    fleet_seed(nodes=12)
    acme = OrganizationFactory.create(name="Acme AI", slug="acme-ai")
    alice = MembershipFactory.create(
        user__email="alice@acme.example", organization=acme, role=Role.OWNER
    ).user
    fiona = MembershipFactory.create(
        user__email="fiona@acme.example", organization=acme, role=Role.FINANCE
    ).user
    ssh_key_add(user=alice, public_key=ALICE_KEY)
    api_token_create(user=alice, organization=acme, name="ci")
    invitation_create(actor=alice, organization=acme, email="omar@acme.example", role=Role.MEMBER)
    nodes = list(Node.objects.order_by("hostname"))
    running = active_lease(nodes, organization=acme, booked_by=alice, hours_ago=1)
    add_samples(
        running, since=timezone.now() - timedelta(minutes=50), every=timedelta(minutes=5), utilization=70
    )
    month = previous_month(timezone.now())
    ended = make_lease(
        organization=acme,
        start=month,
        end=month + timedelta(hours=5),
        gpus=2,
        node=nodes[-1],
        state=LeaseState.ENDED,
    )
    month_close(period_start=month, now=timezone.now())
    nebula = OrganizationFactory.create(name="Nebula Labs", slug="nebula-labs")
    nora = MembershipFactory.create(
        user__email="nora@nebula.example", organization=nebula, role=Role.OWNER
    ).user
    early_stage_apply(
        actor=nora,
        organization=nebula,
        what_we_build="Weather models",
        stage="pre_seed",
        funding="$600k",
        gpus_wanted=16,
        why="A first training run.",
    )
    quota_request_create(actor=alice, organization=acme, gpus=64, why="A training run.")
    return {
        "alice": alice,
        "fiona": fiona,
        "stella": mfa_enable(UserFactory.create(email="stella@voltpark.example", is_staff=True)),
        "frank": mfa_enable(UserFactory.create(email="frank@voltpark.example", is_finance_staff=True)),
        "lone": UserFactory.create(email="lone@example.com"),
        "running": running,
        "ended": ended,
        "invoice": Invoice.objects.get(organization=acme),
        "node": nodes[0],
    }


def assert_none(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


def problems_on(page: Any, live_server: Any, user: Any, paths: list[str]) -> list[str]:
    if user is not None:
        log_in_as(page, live_server.url, user)
    problems = []
    for path in paths:
        response = page.goto(path)
        assert response.status < 400, f"{path}: {response.status}"
        problems += [f"{path} {problem}" for problem in accessibility_problems(page)]
    return problems


def test_the_pages_of_a_visitor_pass_axe(page, live_server, world) -> None:
    paths = ["/", "/signup/", "/login/", "/password/reset/"]
    assert_none(problems_on(page, live_server, None, paths))


def test_the_pages_of_an_owner_pass_axe(page, live_server, world) -> None:
    running: Lease = world["running"]
    ended: Lease = world["ended"]
    paths = [
        "/welcome/",
        "/book/",
        "/leases/",
        f"/leases/{running.public_id}/",
        f"/leases/{running.public_id}/release/",
        f"/leases/{ended.public_id}/",
        "/requests/",
        "/billing/",
        f"/billing/invoices/{world['invoice'].public_id}/",
        "/organization/",
        "/organization/early-stage/",
        "/organization/quota/",
        "/account/ssh-keys/",
        "/account/tokens/",
        "/2fa/",
        "/email/",
    ]
    assert_none(problems_on(page, live_server, world["alice"], paths))


def test_the_pages_of_a_finance_member_and_a_person_without_an_organization_pass_axe(
    page, live_server, world, browser
) -> None:
    assert_none(problems_on(page, live_server, world["fiona"], ["/billing/"]))
    page.context.clear_cookies()
    assert_none(problems_on(page, live_server, world["lone"], ["/welcome/"]))


def test_the_staff_pages_pass_axe(page, live_server, world) -> None:
    paths = [
        "/staff/fleet/",
        f"/staff/fleet/nodes/{world['node'].public_id}/",
        "/staff/early-stage/",
        "/staff/leases/",
    ]
    assert_none(problems_on(page, live_server, world["stella"], paths))
    page.context.clear_cookies()
    assert_none(problems_on(page, live_server, world["frank"], ["/staff/finance/"]))
