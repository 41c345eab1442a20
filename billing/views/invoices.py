"""The organization's billing pages: spend so far, credits, invoices with their PDFs, paying."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.choices import ROLES_THAT_SEE_INVOICES
from accounts.selectors.viewer import viewer_of
from accounts.views.decorators import AuthenticatedHttpRequest, organization_role_required
from billing.choices import InvoiceStatus
from billing.models import Invoice
from billing.selectors.credits import credits_left, credits_total
from billing.selectors.invoices import Scope, invoice_visible_or_404, invoices_visible_to
from billing.selectors.usage import spend_this_month
from billing.services.documents import invoice_pdf_render
from billing.services.refusals import BillingError
from core.timezones import render_in_zone


def _scope(request: AuthenticatedHttpRequest) -> Scope:
    # The organization's own invoices, even for a staff finance member acting in it.
    return Scope(organization=viewer_of(request).organization)


def _invoice(request: AuthenticatedHttpRequest, invoice_id: str) -> Invoice:
    return invoice_visible_or_404(_scope(request), invoice_id)


@organization_role_required(ROLES_THAT_SEE_INVOICES)
def billing(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Spend this month so far, credits left, and the invoices."""
    organization = viewer_of(request).organization
    assert organization is not None
    now = timezone.now()
    grants = credits_left(organization, now)
    context = {
        "org": organization,
        "spend": spend_this_month(organization, now),
        "grants": list(grants),
        "credits_total": credits_total(grants),
        "invoices": invoices_visible_to(_scope(request)),
        "stripe_enabled": settings.STRIPE_ENABLED,
    }
    return render_in_zone(request, "billing/billing.html", context)


@organization_role_required(ROLES_THAT_SEE_INVOICES)
def invoice_detail(request: AuthenticatedHttpRequest, invoice_id: str) -> HttpResponse:
    """One invoice with its lines."""
    invoice = _invoice(request, invoice_id)
    lines = invoice.lines.select_related("region", "lease").order_by("position")
    context = {"invoice": invoice, "lines": lines, "stripe_enabled": settings.STRIPE_ENABLED}
    return render_in_zone(request, "billing/invoice_detail.html", context)


@organization_role_required(ROLES_THAT_SEE_INVOICES)
def invoice_pdf(request: AuthenticatedHttpRequest, invoice_id: str) -> HttpResponse:
    """The finalized invoice as a PDF."""
    invoice = _invoice(request, invoice_id)
    try:
        pdf = invoice_pdf_render(invoice=invoice)
    except BillingError as error:
        raise Http404(error.detail) from None
    response = HttpResponse(bytes(pdf.content), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
    return response


@organization_role_required(ROLES_THAT_SEE_INVOICES)
@require_POST
def invoice_pay(request: AuthenticatedHttpRequest, invoice_id: str) -> HttpResponse:
    """Pay an open invoice on Stripe's hosted page (when Stripe is on)."""
    invoice = _invoice(request, invoice_id)
    if not settings.STRIPE_ENABLED:
        raise Http404("Online payment is not enabled.")
    if invoice.status != InvoiceStatus.OPEN:
        messages.error(
            request, f"Invoice {invoice.number} is {invoice.get_status_display().lower()}: nothing to pay."
        )
    elif not invoice.stripe_hosted_url:
        messages.error(
            request, f"The payment page of {invoice.number} is not ready yet; try again in a minute."
        )
    else:
        return redirect(invoice.stripe_hosted_url)
    return redirect("billing")
