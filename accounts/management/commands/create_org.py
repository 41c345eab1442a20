"""manage.py create_org --name NAME --owner EMAIL [--gpu-quota N]."""

from argparse import ArgumentParser

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from accounts.services.auth import user_create
from accounts.services.organizations import organization_create


class Command(BaseCommand):
    help = (
        "Create an organization owned by EMAIL (the user is created if needed, with no password and the "
        "address unverified: they set a password by 'Forgot your password?' and verify the address "
        "before booking); prints its slug."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="The owner's email.")
        parser.add_argument("--gpu-quota", type=int, default=None)

    def handle(self, *args: object, **options: object) -> None:
        quota = options["gpu_quota"]
        if quota is not None and int(quota) < 0:  # type: ignore[call-overload]
            raise CommandError("--gpu-quota must be 0 or more")
        email = str(options["owner"]).strip().lower()
        try:
            with transaction.atomic():
                owner = User.objects.filter(email=email).first() or user_create(email=email)
                org = organization_create(owner=owner, name=str(options["name"]), gpu_quota=quota)  # type: ignore[arg-type]
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(org.slug)
