"""manage.py create_org --name NAME --owner EMAIL [--gpu-quota N] [--credit AMOUNT] [--invoiced].

In billing, not accounts: an operator's organization may come with approved credit or invoice terms.
"""

from argparse import ArgumentParser
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services.auth import user_create
from accounts.services.organizations import organization_create
from billing.choices import CreditSource, PaymentTerms
from billing.services.accounts import account_set_terms
from billing.services.credits import credit_grant_create


def _amount(value: object, flag: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise CommandError(f"{flag} must be an amount in USD, such as 5000") from None
    if amount <= 0:
        raise CommandError(f"{flag} must be more than 0")
    return amount


class Command(BaseCommand):
    help = (
        "Create an organization owned by EMAIL (the user is created if needed, with no password and the "
        "address unverified: they set a password by 'Forgot your password?' and verify the address "
        "before booking); prints its slug. --credit or --invoiced let it pay from the start."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="The owner's email.")
        parser.add_argument("--gpu-quota", type=int, default=None)
        parser.add_argument("--credit", default=None, help="Approved credit in USD: it may book at once.")
        parser.add_argument("--credit-days", type=int, default=365, help="Days the credit lasts (365).")
        parser.add_argument("--invoiced", action="store_true", help="Invoice terms instead of prepaid.")
        parser.add_argument(
            "--credit-limit", default="10000", help="With --invoiced: USD it may owe (10000)."
        )
        parser.add_argument("--net-days", type=int, default=None, help="With --invoiced: days to pay.")

    def handle(self, *args: object, **options: object) -> None:
        quota = options["gpu_quota"]
        if quota is not None and int(quota) < 0:  # type: ignore[call-overload]
            raise CommandError("--gpu-quota must be 0 or more")
        credit = _amount(options["credit"], "--credit")
        limit = _amount(options["credit_limit"], "--credit-limit") if options["invoiced"] else None
        days = int(options["credit_days"])  # type: ignore[call-overload]
        if days < 1:
            raise CommandError("--credit-days must be 1 or more")
        email = str(options["owner"]).strip().lower()
        try:
            with transaction.atomic():
                owner = User.objects.filter(email=email).first() or user_create(email=email)
                org = organization_create(owner=owner, name=str(options["name"]), gpu_quota=quota)  # type: ignore[arg-type]
                if credit is not None:
                    credit_grant_create(
                        actor=None,
                        organization=org,
                        amount=credit,
                        expires_at=timezone.now() + timedelta(days=days),
                        source=CreditSource.APPROVED,
                        note="Approved by an operator (create_org --credit)",
                    )
                if limit is not None:
                    net = options["net_days"]
                    account_set_terms(
                        actor=None,
                        organization=org,
                        terms=PaymentTerms.INVOICED,
                        net_days=settings.INVOICE_NET_DAYS if net is None else int(net),  # type: ignore[call-overload]
                        credit_limit=limit,
                    )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(org.slug)
