"""The Django admin cannot go round the services: leases, allocations, invoices and their lines,
usage, the ledger and the audit trail are read-only there; draining a node, changing a quota and
granting credit call the services, which audit them."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.forms import MultiWidget
from django.test import Client, RequestFactory
from django.utils import timezone

from accounts.models import AuditEntry, Organization, User
from billing.models import CreditGrant, Invoice, InvoiceLine, LedgerEntry, UsageHour
from billing.services.invoicing import month_close
from clusters.choices import NodeState
from clusters.models import Allocation, Lease, Node
from tests.billing.factories import make_lease
from tests.clusters.helpers import build_fleet
from tests.factories import UserFactory, mfa_enable

READ_ONLY = [Lease, Invoice, UsageHour, LedgerEntry, AuditEntry]


@pytest.fixture
def ada(db) -> User:
    """A staff admin with every Django permission (a superuser) and a second factor."""
    return mfa_enable(UserFactory.create(email="ada@voltpark.example", is_staff=True, is_superuser=True))


@pytest.fixture
def admin_client(ada) -> Client:
    client = Client()
    client.force_login(ada)
    return client


def form_values(form, prefix: str = "") -> dict[str, object]:
    """A bound form's current values as the browser would post them (split widgets split)."""
    data: dict[str, object] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        key = form.add_prefix(name) if prefix else name
        if value in (None, False):
            continue
        if isinstance(field.widget, MultiWidget):
            for index, part in enumerate(field.widget.decompress(value) or []):
                data[f"{key}_{index}"] = "" if part is None else str(part)
        else:
            data[key] = value
    return data


def change_form_data(client: Client, url: str, **changes: object) -> dict[str, object]:
    """What the admin's change form at `url` would post unchanged, with `changes` applied."""
    page = client.get(url)
    assert page.status_code == 200
    data = form_values(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-{k}": v for k, v in formset.management_form.initial.items()})
        for sub in formset.forms:
            data.update(form_values(sub, prefix=sub.prefix))
    data.update(changes)
    return data


@pytest.fixture
def closed_march(acme) -> Invoice:
    march = datetime(2026, 3, 1, tzinfo=UTC)
    make_lease(organization=acme, start=march, end=march + timedelta(hours=4), gpus=8, price="1.9900")
    month_close(period_start=march, now=datetime(2026, 4, 1, 1, tzinfo=UTC))
    return Invoice.objects.get(organization=acme)


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_rows_only_services_write_are_read_only_in_the_admin(ada, model) -> None:
    request = RequestFactory().get("/admin/")
    request.user = ada
    model_admin = admin.site._registry[model]
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_allocations_and_invoice_lines_are_read_only_inlines(ada) -> None:
    request = RequestFactory().get("/admin/")
    request.user = ada
    for parent, child in ((Lease, Allocation), (Invoice, InvoiceLine)):
        (inline,) = [
            i for i in admin.site._registry[parent].get_inline_instances(request) if i.model is child
        ]
        assert not (inline.has_add_permission(request, None) or inline.has_change_permission(request))
        assert not inline.has_delete_permission(request)


def test_posting_to_a_lease_or_an_invoice_in_the_admin_changes_nothing(admin_client, closed_march) -> None:
    lease = Lease.objects.get()
    assert admin_client.post(f"/admin/clusters/lease/{lease.pk}/change/", {"gpus": 1}).status_code == 403
    assert admin_client.post(f"/admin/clusters/lease/{lease.pk}/delete/", {"post": "yes"}).status_code == 403
    invoice_url = f"/admin/billing/invoice/{closed_march.pk}/delete/"
    assert admin_client.post(invoice_url, {"post": "yes"}).status_code == 403
    entry = AuditEntry.objects.first()
    assert (
        admin_client.post(f"/admin/accounts/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Lease.objects.get().gpus == 8 and Invoice.objects.filter(pk=closed_march.pk).exists()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_nodes_are_drained_and_undrained_by_admin_actions_through_the_services(admin_client, ada) -> None:
    nodes = build_fleet(clusters=1, nodes_per_cluster=2).nodes
    ids = [str(node.pk) for node in nodes]
    drained = admin_client.post(
        "/admin/clusters/node/", {"action": "drain", "_selected_action": ids}, follow=True
    )
    assert "2 node(s) drained" in drained.content.decode()
    assert set(Node.objects.values_list("state", flat=True)) == {NodeState.DRAINING}
    audits = AuditEntry.objects.filter(action="node.drained", actor=ada)
    assert audits.count() == 2 and "Django admin" in audits.first().after["reason"]

    again = admin_client.post(
        "/admin/clusters/node/", {"action": "drain", "_selected_action": ids[:1]}, follow=True
    )
    assert "only an available node can be drained" in again.content.decode()  # the service's refusal

    admin_client.post("/admin/clusters/node/", {"action": "undrain", "_selected_action": ids})
    assert set(Node.objects.values_list("state", flat=True)) == {NodeState.AVAILABLE}
    assert AuditEntry.objects.filter(action="node.undrained", actor=ada).count() == 2


def test_the_node_form_cannot_set_a_state(admin_client) -> None:
    node = build_fleet(clusters=1, nodes_per_cluster=1).nodes[0]
    url = f"/admin/clusters/node/{node.pk}/change/"
    admin_client.post(url, change_form_data(admin_client, url, state=NodeState.OFFLINE, state_reason="x"))
    node.refresh_from_db()
    assert (node.state, node.state_reason) == (NodeState.AVAILABLE, "")


def test_a_quota_change_in_the_admin_goes_through_the_service_and_is_audited(admin_client, ada, acme) -> None:
    url = f"/admin/accounts/organization/{acme.pk}/change/"
    saved = admin_client.post(url, change_form_data(admin_client, url, gpu_quota=64, name="Acme AI Labs"))
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved
    acme.refresh_from_db()
    assert (acme.gpu_quota, acme.name) == (64, "Acme AI Labs")
    audit = AuditEntry.objects.get(action="organization.quota_set")
    assert (audit.actor, audit.before, audit.after) == (ada, {"gpu_quota": 8}, {"gpu_quota": 64})


def test_an_impossible_quota_in_the_admin_is_a_form_error(admin_client, acme) -> None:
    url = f"/admin/accounts/organization/{acme.pk}/change/"
    refused = admin_client.post(url, change_form_data(admin_client, url, gpu_quota=2_147_483_648))
    assert refused.status_code == 200 and "gpu_quota" in refused.context["adminform"].form.errors
    assert Organization.objects.get(pk=acme.pk).gpu_quota == 8
    assert not AuditEntry.objects.filter(action="organization.quota_set").exists()


def test_the_early_stage_approval_is_not_editable_in_the_admin(admin_client, acme) -> None:
    url = f"/admin/accounts/organization/{acme.pk}/change/"
    admin_client.post(url, change_form_data(admin_client, url, early_stage_approved="on"))
    assert not Organization.objects.get(pk=acme.pk).early_stage_approved


def test_credit_is_granted_in_the_admin_through_the_service(admin_client, ada, acme) -> None:
    expires = (timezone.now() + timedelta(days=90)).strftime("%Y-%m-%d")
    body = {
        "organization": acme.pk,
        "source": CreditGrant._meta.get_field("source").default,
        "amount": "500.00",
        "expires_at_0": expires,
        "expires_at_1": "00:00:00",
        "note": "goodwill",
    }
    added = admin_client.post("/admin/billing/creditgrant/add/", body)
    assert added.status_code == 302, added.context["adminform"].form.errors if added.context else added
    grant = CreditGrant.objects.get(organization=acme)
    assert (grant.amount, grant.remaining, grant.granted_by) == (Decimal("500.00"), Decimal("500.00"), ada)
    assert LedgerEntry.objects.filter(organization=acme, credit_grant_id=grant.pk).exists()
    assert AuditEntry.objects.filter(action="credit_grant.create", actor=ada).count() == 1
    url = f"/admin/billing/creditgrant/{grant.pk}/change/"
    assert admin_client.post(url, {**body, "amount": "5000.00"}).status_code == 403
    assert CreditGrant.objects.get(pk=grant.pk).amount == Decimal("500.00")


def test_a_worthless_credit_grant_in_the_admin_is_a_form_error(admin_client, acme) -> None:
    body = {"organization": acme.pk, "source": "early_stage", "amount": "0", "expires_at_0": "2020-01-01",
            "expires_at_1": "00:00:00"}  # fmt: skip
    refused = admin_client.post("/admin/billing/creditgrant/add/", body)
    errors = refused.context["adminform"].form.errors
    assert refused.status_code == 200 and "amount" in errors and "expires_at" in errors
    assert not CreditGrant.objects.exists()
