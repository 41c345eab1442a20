"""Schemathesis over the whole OpenAPI schema, as an organization's owner and as staff: every
operation is called with data generated from the schema (valid and invalid), against ids that exist
and ids that do not, and no answer may be a server error or break the schema.

Bounded for CI: a fixed seed (derandomized Hypothesis) and FUZZ_MAX_EXAMPLES examples per operation
and token (3 by default, about a minute and a half on the shared machine; set it higher to search
longer).
"""

import os
import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from accounts.services.ssh_keys import ssh_key_add
from accounts.services.tokens import api_token_create
from billing.models import Invoice
from clusters.models import Node
from clusters.services.fleet import fleet_seed
from tests.accounts.helpers import ALICE_KEY
from tests.billing.factories import make_lease
from tests.factories import UserFactory, mfa_enable
from tests.helpers import api_client_for

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "3"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
GENEROUS = "100000/m"
# Well-formed but impossible instants (30 February, hour 25, minute 99): a generator from the schema's
# `date-time` format makes real ones, so each example may swap every instant it sent for one of these.
IMPOSSIBLE = ["2027-02-30T10:00:00Z", "2027-03-01T25:00:00Z", "2027-03-01T10:99:00Z", "2027-02-30"]
INSTANT = re.compile(r"\d{4}-\d\d-\d\d([T ][\d:.]+)?(Z|[+-]\d\d:?\d\d)?")


@pytest.fixture
def wsgi_app(settings, known_ids):
    """The platform as a WSGI app in this test's transaction: Django's handler would close the
    connection after each request (as the test client avoids too; it reconnects the signal after
    each of its requests, so this comes after the fixtures that use it), and the throttles would
    stop the run long before it is done."""
    settings.API_THROTTLE_RATES = {scope: GENEROUS for scope in settings.API_THROTTLE_RATES}
    settings.API_THROTTLE_IP_RATES = {scope: GENEROUS for scope in settings.API_THROTTLE_IP_RATES}
    settings.API_AUTH_FAILURE_RATE = GENEROUS
    settings.STRIPE_ENABLED = False
    settings.CELERY_TASK_ALWAYS_EAGER = True
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def known_ids(alice, acme) -> dict[str, str]:
    """Objects that exist, so that operations on an id reach their real handling too."""
    fleet_seed(nodes=6)
    client = api_client_for(alice, acme)
    start = (timezone.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    booked = client.post(
        "/api/v1/leases/",
        {"region": "us-tx-1", "gpus": 1, "kind": "reserved", "start": start.isoformat(),
         "end": (start + timedelta(hours=3)).isoformat()},
    )  # fmt: skip
    assert booked.status_code == 201, booked.json()
    queued = client.post("/api/v1/lease-requests/", {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"})
    month = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(days=40)
    make_lease(organization=acme, start=month, end=month + timedelta(hours=2), gpus=1)
    from billing.services.invoicing import month_close
    from core.periods import month_of

    month_close(period_start=month_of(month))
    ids = {
        "lease_id": booked.json()["id"],
        "invoice_id": str(Invoice.objects.filter(organization=acme).first().public_id),
        "key_id": str(ssh_key_add(user=alice, name="fuzz", public_key=ALICE_KEY).public_id),
        "token_id": str(api_token_create(user=alice, organization=acme, name="spare").token.public_id),
        "slug": acme.slug,
        "code": "us-tx-1",
        "node_id": str(Node.objects.order_by("hostname").first().public_id),
    }
    if queued.status_code == 201:
        ids["request_id"] = queued.json()["id"]
    return ids


@pytest.fixture
def staff(db) -> User:
    """Staff admin and staff finance at once, with a second factor: every staff operation answers."""
    return mfa_enable(UserFactory.create(email="sam@voltpark.example", is_staff=True, is_finance_staff=True))


def _path_ids(path: str, known: dict[str, str]) -> dict[str, str]:
    ids = dict(known)
    ids["public_id"] = known["node_id"] if path.startswith("/api/v1/nodes/") else known["lease_id"]
    return ids


def _impossible_instants(case: Any, impossible: str | None) -> None:
    """Swap each date or date-time the case sends (query or top-level body) for `impossible`."""
    if impossible is None:
        return
    for values in (case.query, case.body):
        if isinstance(values, dict):
            for name, value in values.items():
                if isinstance(value, str) and INSTANT.fullmatch(value):
                    values[name] = impossible


def _fuzz(schema: Any, app: Any, secret: str, known: dict[str, str]) -> Counter[str]:
    """Every operation's examples; answers counted by operation and status."""
    called: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {secret}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        names = [parameter.name for parameter in operation.path_parameters]
        real = {name: value for name, value in _path_ids(operation.path, known).items() if name in names}
        strategies = [
            operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
        if real:
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(strategies), impossible=st.sampled_from([*IMPOSSIBLE, None]))
        def exercise(case: Any, impossible: str | None) -> None:
            _impossible_instants(case, impossible)
            response = case.call(headers=headers)
            called[f"{case.operation.label} {response.status_code}"] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)

        exercise()
    return called


@pytest.mark.slow
def test_the_whole_schema_answers_owners_and_staff_without_server_errors_or_schema_violations(
    wsgi_app, known_ids, alice, acme, staff
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)
    operations = [result.ok().label for result in schema.get_all_operations()]
    assert len(operations) >= 54
    owner = api_token_create(user=alice, organization=acme, name="fuzz-owner").secret
    staff_token = api_token_create(user=staff, organization=None, name="fuzz-staff").secret
    answered: Counter[str] = Counter()
    for secret in (owner, staff_token):
        answered += _fuzz(schema, wsgi_app, secret, known_ids)
    exercised = {label.rsplit(" ", 1)[0] for label in answered}
    assert exercised == set(operations)
    assert not [label for label in answered if label.endswith((" 500", " 502", " 503"))]
