"""Staff finance sets invoice terms, records bank transfers and lifts suspensions; nobody else may."""

from decimal import Decimal

import pytest

from billing.models import BillingAccount, LedgerEntry
from billing.services.accounts import account_suspend

ACCOUNT = "/api/v1/organizations/acme-ai/account/"


def test_staff_finance_puts_an_organization_on_invoice_terms(api_as, frank, alice) -> None:
    response = api_as(frank).put(
        f"{ACCOUNT}terms/", {"terms": "invoiced", "net_days": 45, "credit_limit": "20000"}, format="json"
    )
    assert response.status_code == 200 and response.json()["terms"] == "invoiced"
    account = BillingAccount.objects.get(organization__slug="acme-ai")
    assert (account.net_days, account.credit_limit) == (45, Decimal("20000.00"))


def test_a_bank_transfer_is_added_once_per_reference(api_as, frank, alice) -> None:
    body = {"amount": "1500.00", "reference": "WIRE-2026-0042"}
    first = api_as(frank).post(f"{ACCOUNT}transfers/", body, format="json")
    again = api_as(frank).post(f"{ACCOUNT}transfers/", body, format="json")
    assert first.status_code == again.status_code == 200
    assert LedgerEntry.objects.filter(kind="top_up", external_id="transfer:WIRE-2026-0042").count() == 1


def test_staff_finance_lifts_a_suspension(api_as, frank, alice, acme) -> None:
    account_suspend(actor=None, organization=acme, reason="an invoice is overdue")
    response = api_as(frank).post(f"{ACCOUNT}lift-suspension/", {"reason": "Paid by wire"}, format="json")
    assert response.status_code == 200 and response.json()["suspended"] is False


@pytest.mark.parametrize("who", ["alice", "stella"])
def test_owners_and_staff_admins_cannot_change_terms(api_as, everyone, who) -> None:
    response = api_as(everyone[who]).put(
        f"{ACCOUNT}terms/", {"terms": "invoiced", "credit_limit": "999999"}, format="json"
    )
    assert response.status_code == 403


def test_bad_terms_get_400_naming_the_field(api_as, frank, alice) -> None:
    response = api_as(frank).put(f"{ACCOUNT}terms/", {"terms": "barter", "credit_limit": "-5"}, format="json")
    assert response.status_code == 400 and {"terms", "credit_limit"} <= set(response.json()["fields"])
