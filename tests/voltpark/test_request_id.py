"""Every request has an id: the client's X-Request-ID or a new one, in the answer, on every log line
written while serving it, and on the audit rows it writes."""

import io
import logging
import re
from collections.abc import Callable, Iterator

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from accounts.models import AuditEntry, Organization
from accounts.services.audit import audit_record
from core.request_id import current_request_id
from tests.accounts.test_ssh_keys import ALICE_KEY

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>\S+) request_id=(?P<id>\S+) "
)
log = logging.getLogger("tests.voltpark.request_id")


def logging_and_auditing_view(request: HttpRequest) -> HttpResponse:
    """A view that writes a log line and an audit row, as a service called by a real view does."""
    log.warning("serving the probe")
    organization = Organization.objects.get()
    audit_record(actor=None, action="probe.served", obj=organization, organization=organization)
    return HttpResponse("served")


urlpatterns = [path("probe/", logging_and_auditing_view)]


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[str]]]:
    """The lines written by settings.LOGGING's console handler (its format and filter) during the test."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield lambda: buffer.getvalue().splitlines()
    finally:
        handler.setStream(previous)


@pytest.mark.urls("tests.voltpark.test_request_id")
def test_a_requests_log_lines_and_audit_row_carry_the_id_of_its_header(
    client: Client, acme: Organization, log_lines: Callable[[], list[str]]
) -> None:
    response = client.get("/probe/", HTTP_X_REQUEST_ID="trace-42-abc")

    assert response.status_code == 200 and response["X-Request-ID"] == "trace-42-abc"
    line = next(line for line in log_lines() if "serving the probe" in line)
    parts = LINE.match(line)
    assert parts is not None, line
    assert parts.group("level", "logger", "id") == ("WARNING", "tests.voltpark.request_id", "trace-42-abc")
    assert AuditEntry.objects.get(action="probe.served").request_id == "trace-42-abc"
    assert current_request_id() is None


def test_a_request_without_an_id_gets_a_new_one_in_its_answer(client: Client, db: None) -> None:
    first, second = client.get("/login/"), client.get("/login/")
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.parametrize(
    "sent",
    ["x" * 65, "has space", "new\nline", "semi;colon", "ünïcode", ""],
    ids=["too-long", "space", "newline", "semicolon", "non-ascii", "empty"],
)
def test_a_malformed_client_id_is_replaced_by_a_new_one(client: Client, db: None, sent: str) -> None:
    response = client.get("/login/", HTTP_X_REQUEST_ID=sent)
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_an_api_call_audits_with_its_id_and_a_refused_one_logs_with_its_own(
    api_as, alice, log_lines: Callable[[], list[str]]
) -> None:
    client = api_as(alice)
    added = client.post(
        "/api/v1/ssh-keys/", {"public_key": ALICE_KEY}, format="json", HTTP_X_REQUEST_ID="add-1"
    )
    refused = client.post(
        "/api/v1/ssh-keys/", {"public_key": "nope"}, format="json", HTTP_X_REQUEST_ID="bad-2"
    )

    assert added.status_code == 201 and added["X-Request-ID"] == "add-1"
    assert AuditEntry.objects.get(action="ssh_key.add").request_id == "add-1"
    assert refused.status_code == 400 and refused["X-Request-ID"] == "bad-2"
    # Django logs a 4xx answer after the middleware has returned; the id is still the request's.
    warning = next(line for line in log_lines() if "Bad Request: /api/v1/ssh-keys/" in line)
    assert LINE.match(warning).group("logger", "id") == ("django.request", "bad-2")


def test_a_line_logged_outside_a_request_says_so(log_lines: Callable[[], list[str]]) -> None:
    log.warning("between requests")
    line = next(line for line in log_lines() if "between requests" in line)
    assert LINE.match(line).group("id") == "-"
