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


# What each role may do inside its organization (DESIGN.md, "People and what they may do").
ROLES_THAT_BOOK = {Role.OWNER, Role.MEMBER}
ROLES_THAT_SEE_INVOICES = {Role.OWNER, Role.FINANCE}
ROLES_THAT_MANAGE_MEMBERS = {Role.OWNER}
ROLES_THAT_PAY = {Role.OWNER}  # card, top-ups, spend limits
