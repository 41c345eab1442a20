"""Named choices for accounts."""

from django.db import models


class OrganizationKind(models.TextChoices):
    STARTUP = "startup", "Startup"
    SCALE_UP = "scale_up", "Scale-up"
    RESEARCH = "research", "Research group"
    OTHER = "other", "Other"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MEMBER = "member", "Member"
    FINANCE = "finance", "Finance"


class SsoProvider(models.TextChoices):
    """The identity providers an organization may require its members to sign in with."""

    GITHUB = "github", "GitHub"
    GOOGLE = "google", "Google"


class TokenScope(models.TextChoices):
    """What an API token may be used for, on top of what its user's role allows."""

    READ = "read", "Read: see leases, regions, capacity, quotes, keys and telemetry"
    BOOK = "book", "Book: book, extend, release and cancel leases, queue requests, change keys"
    BILLING = "billing", "Billing: see and pay: balance, invoices, usage and exports"


def all_token_scopes() -> list[str]:
    """Every scope: a token made without naming scopes, and every token made before scopes."""
    return list(TokenScope.values)


# What each role may do inside its organization (DESIGN.md, "People and what they may do").
ROLES_THAT_BOOK = {Role.OWNER, Role.MEMBER}
ROLES_THAT_SEE_INVOICES = {Role.OWNER, Role.FINANCE}
ROLES_THAT_MANAGE_MEMBERS = {Role.OWNER}
ROLES_THAT_PAY = {Role.OWNER}  # card, top-ups, spend limits
