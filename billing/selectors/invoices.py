"""Invoice reads scoped to who asks: an organization's own, or every one for staff finance."""

from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.models import Organization, User
from accounts.selectors.staff import is_staff_finance
from billing.models import Invoice
from core.db import get_by_public_id_or_404


@dataclass(frozen=True)
class Scope:
    """Whose money a request may see: one organization, or every one (staff finance)."""

    organization: Organization | None
    everyone: bool = False


def billing_scope(user: User, organization: Organization | None) -> Scope:
    """Staff finance see every organization; anyone else only the organization they act in."""
    if is_staff_finance(user):
        return Scope(organization=None, everyone=True)
    return Scope(organization=organization)


def invoices_visible_to(scope: Scope) -> QuerySet[Invoice]:
    """The invoices (and credit notes) the scope may see, newest period first."""
    invoices = Invoice.objects.select_related("organization")
    if not scope.everyone:
        invoices = invoices.filter(organization=scope.organization)
    return invoices.order_by("-period_start", "number", "pk")


def invoice_visible_or_404(scope: Scope, public_id: str) -> Invoice:
    """One invoice the scope may see; another organization's id is a 404."""
    return get_by_public_id_or_404(invoices_visible_to(scope), public_id)
