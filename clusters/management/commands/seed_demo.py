"""manage.py seed_demo: the demo fleet (pointed at the simulated agent) and demo accounts."""

from argparse import ArgumentParser

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.choices import Role
from accounts.models import Membership, Organization, User
from accounts.services.organizations import organization_create
from clusters.models import Node
from clusters.services.fleet import fleet_seed

DEMO_PASSWORD = "voltpark-demo"
AGENT_TOKEN = "demo-agent-token"
PEOPLE = [
    # email, name, staff admin, staff finance
    ("owner@demo.voltpark.dev", "Olivia Owner", False, False),
    ("member@demo.voltpark.dev", "Max Member", False, False),
    ("finance@demo.voltpark.dev", "Fay Finance", False, False),
    ("admin@demo.voltpark.dev", "Ada Admin", True, False),
    ("cfo@demo.voltpark.dev", "Carl Staff-Finance", False, True),
]


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
        self._people()
        self.stdout.write(self.style.SUCCESS(f"Demo accounts (password: {DEMO_PASSWORD}):"))
        for email, name, *_ in PEOPLE:
            self.stdout.write(f"  {email:32} {name}")

    @transaction.atomic
    def _people(self) -> None:
        users = {}
        for email, name, staff, finance in PEOPLE:
            user = User.objects.filter(email=email).first() or User.objects.create_user(
                email,
                DEMO_PASSWORD,
                full_name=name,
                is_staff=staff,
                is_superuser=staff,
                is_finance_staff=finance,
            )
            users[email] = user
        org = Organization.objects.filter(slug="acme-ai").first()
        if org is None:
            org = organization_create(owner=users["owner@demo.voltpark.dev"], name="Acme AI", gpu_quota=64)
        for email, role in [
            ("member@demo.voltpark.dev", Role.MEMBER),
            ("finance@demo.voltpark.dev", Role.FINANCE),
        ]:
            Membership.objects.get_or_create(user=users[email], organization=org, defaults={"role": role})
