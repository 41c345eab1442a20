"""Credits left to an organization."""

from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet, Sum

from accounts.models import Organization
from billing.models import CreditGrant


def credits_left(organization: Organization, at: datetime) -> QuerySet[CreditGrant]:
    """The organization's grants with money left that have not expired, soonest to expire first."""
    grants = CreditGrant.objects.filter(organization=organization, remaining__gt=0, expires_at__gt=at)
    return grants.order_by("expires_at", "pk")


def credits_total(grants: QuerySet[CreditGrant]) -> Decimal:
    """The money left on these grants."""
    return grants.aggregate(total=Sum("remaining"))["total"] or Decimal("0.00")
