"""manage.py create_token --email EMAIL [--org SLUG] [--name NAME]."""

from argparse import ArgumentParser

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization, User
from accounts.selectors.organizations import organizations_of
from accounts.selectors.staff import is_staff
from accounts.services.tokens import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user; the token is printed on the last line."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--org", default=None, help="Organization slug; optional if the user has one.")
        parser.add_argument("--name", default="CLI token")

    def handle(self, *args: object, **options: object) -> None:
        user = User.objects.filter(email=str(options["email"]).strip().lower()).first()
        if user is None:
            raise CommandError(f"No user with email {options['email']}")
        organization = self._organization(user, options["org"])  # type: ignore[arg-type]
        try:
            issued = api_token_create(user=user, organization=organization, name=str(options["name"]))
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        where = organization.slug if organization else "no organization (staff)"
        self.stdout.write(f"Token {issued.token.name!r} for {user.email} in {where}:")
        self.stdout.write(issued.secret)

    def _organization(self, user: User, slug: str | None) -> Organization | None:
        mine = organizations_of(user)
        if slug:
            org = mine.filter(slug=slug).first()
            if org is None:
                raise CommandError(f"{user.email} is not a member of an organization with slug {slug!r}")
            return org
        count = mine.count()
        if count == 1:
            return mine.get()
        if count == 0 and is_staff(user):
            return None
        if count == 0:
            raise CommandError(f"{user.email} belongs to no organization; create one with create_org")
        raise CommandError(f"{user.email} belongs to {count} organizations; choose one with --org")
