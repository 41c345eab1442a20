"""manage.py create_org: creates the owner if needed and prints the slug; approved credit, invoice terms."""

from decimal import Decimal
from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Membership, Organization, User
from billing.models import BillingAccount, CreditGrant
from billing.services.payment import payment_check
from clusters.selectors.capacity import Window


def test_it_creates_the_organization_and_its_owner(db, capsys) -> None:
    call_command("create_org", "--name", "Deep Fjord", "--owner", "Olga@Fjord.example", "--gpu-quota", "64")
    assert capsys.readouterr().out.strip() == "deep-fjord"
    org = Organization.objects.get(slug="deep-fjord")
    owner = User.objects.get(email="olga@fjord.example")
    assert org.gpu_quota == 64 and Membership.objects.get(user=owner, organization=org).role == Role.OWNER


def test_a_second_organization_of_the_same_name_gets_its_own_slug(db, capsys) -> None:
    call_command("create_org", "--name", "Deep Fjord", "--owner", "a@x.example")
    call_command("create_org", "--name", "Deep Fjord", "--owner", "a@x.example")
    assert capsys.readouterr().out.split() == ["deep-fjord", "deep-fjord-2"]


def test_it_refuses_a_negative_quota(db) -> None:
    with pytest.raises(CommandError, match="0 or more"):
        call_command("create_org", "--name", "X", "--owner", "x@x.example", "--gpu-quota", "-1")
    assert not Organization.objects.exists()


def test_an_operator_gives_approved_credit_so_it_can_book_at_once(db) -> None:
    out = StringIO()
    call_command(
        "create_org", "--name", "Deep Fjord", "--owner", "olga@fjord.example", "--credit", "5000", stdout=out
    )
    org = Organization.objects.get(slug=out.getvalue().strip())
    grant = CreditGrant.objects.get(organization=org)
    assert (grant.amount, grant.source) == (Decimal("5000.00"), "approved")
    assert BillingAccount.objects.get(pk=org.pk).balance == Decimal("5000.00")
    payment_check(
        organization=org,
        kind="on_demand",
        gpus=8,
        window=Window(timezone.now(), None),
        price=Decimal("2.49"),
        now=timezone.now(),
    )


def test_an_operator_puts_an_organization_on_invoice_terms(db) -> None:
    out = StringIO()
    call_command(
        "create_org",
        "--name",
        "Big Co",
        "--owner",
        "cfo@big.example",
        "--invoiced",
        "--credit-limit",
        "25000",
        "--net-days",
        "45",
        stdout=out,
    )
    account = BillingAccount.objects.get(organization__slug=out.getvalue().strip())
    assert (account.terms, account.credit_limit, account.net_days) == ("invoiced", Decimal("25000.00"), 45)


def test_a_bad_credit_amount_is_refused_naming_the_flag(db) -> None:
    with pytest.raises(CommandError, match="--credit"):
        call_command("create_org", "--name", "X", "--owner", "x@x.example", "--credit", "lots")
    assert not Organization.objects.exists()


def test_the_owner_it_creates_has_not_verified_the_address(db) -> None:
    call_command("create_org", "--name", "Deep Fjord", "--owner", "olga@fjord.example")
    address = EmailAddress.objects.get(user__email="olga@fjord.example")
    assert (address.email, address.primary, address.verified) == ("olga@fjord.example", True, False)
