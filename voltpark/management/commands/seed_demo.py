"""manage.py seed_demo: the demo fleet (pointed at the simulated agent), demo accounts, and life in it."""

from argparse import ArgumentParser

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.choices import Role
from accounts.models import Membership, Organization, User
from accounts.services.auth import user_create
from accounts.services.organizations import organization_create
from clusters.models import Node
from clusters.services.fleet import fleet_seed
from voltpark.demo import (
    demo_closed_month,
    demo_money,
    demo_prices,
    demo_running_leases,
    demo_startup_applying,
)
from voltpark.demo_logins import DEMO_PASSWORD, DEMO_TOTP_SECRET, PEOPLE, logins_text

AGENT_TOKEN = "demo-agent-token"


class Command(BaseCommand):
    help = "Seed the demo fleet and demo accounts (idempotent) and print the logins."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--nodes", type=int, default=96)
        parser.add_argument("--agent-port", type=int, default=9100)

    def handle(self, *args: object, **options: object) -> None:
        agent_base = f"http://127.0.0.1:{options['agent_port']}"
        fleet_seed(nodes=int(options["nodes"]), agent_base=agent_base, agent_token=AGENT_TOKEN)  # type: ignore[call-overload]
        hosts = settings.DATA_DIR / "demo-hosts.txt"
        hosts.write_text(
            "\n".join(Node.objects.order_by("hostname").values_list("hostname", flat=True)) + "\n"
        )
        users = self._people()
        self._lively(users)
        self.stdout.write(self.style.SUCCESS("Demo accounts:"))
        self.stdout.write(logins_text())

    def _lively(self, users: dict[str, User]) -> None:
        """Leases running, an early-stage application waiting, last month closed."""
        owner, founder = users["owner@demo.voltpark.dev"], users["founder@demo.voltpark.dev"]
        application = demo_startup_applying(founder=founder)
        demo_prices()
        demo_money()
        closed = demo_closed_month(bookers={"acme-ai": owner, "nebula-labs": founder})
        booked = demo_running_leases(
            organization=Organization.objects.get(slug="acme-ai"), user=users["member@demo.voltpark.dev"]
        )
        self.stdout.write(
            f"Early-stage application of {application.organization.name}: {application.status}."
        )
        if closed is not None:
            self.stdout.write(f"Closed {closed.period_start:%Y-%m}: {closed.invoices_created} invoices.")
        if booked:
            self.stdout.write(
                f"Booked {len(booked)} leases for Acme AI; the sweeper starts them within a minute."
            )

    @transaction.atomic
    def _people(self) -> dict[str, User]:
        users = {}
        for person in PEOPLE:
            email, staff, finance = person.email, person.staff_admin, person.staff_finance
            user = User.objects.filter(email=email).first() or user_create(
                email=email,
                password=DEMO_PASSWORD,
                full_name=person.name,
                email_verified=True,
                is_staff=staff,
                is_superuser=staff,
                is_finance_staff=finance,
            )
            if (staff or finance) and not Authenticator.objects.filter(user=user).exists():
                TOTP.activate(user, DEMO_TOTP_SECRET)
            users[email] = user
        org = Organization.objects.filter(slug="acme-ai").first()
        if org is None:
            org = organization_create(owner=users["owner@demo.voltpark.dev"], name="Acme AI", gpu_quota=64)
        for email, role in [
            ("member@demo.voltpark.dev", Role.MEMBER),
            ("finance@demo.voltpark.dev", Role.FINANCE),
        ]:
            Membership.objects.get_or_create(user=users[email], organization=org, defaults={"role": role})
        return users
