"""The organization's billing pages: spend so far, credits, invoices with their PDFs, paying."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.choices import ROLES_THAT_PAY, ROLES_THAT_SEE_INVOICES
from accounts.models import Organization
from accounts.selectors.organizations import role_in
from accounts.selectors.viewer import viewer_of
from accounts.views.decorators import AuthenticatedHttpRequest, organization_role_required
from billing.choices import InvoiceStatus
from billing.forms.balance import SpendSettingsForm, TopUpForm
from billing.models import Invoice
from billing.selectors.balance import balance_of
from billing.selectors.credits import credits_left, credits_total
from billing.selectors.invoices import Scope, invoice_visible_or_404, invoices_visible_to
from billing.selectors.usage import spend_this_month
from billing.services.accounts import SETTINGS_FIELDS, SpendSettings, account_settings_update
from billing.services.documents import invoice_pdf_render
from billing.services.payments import card_setup_start, checkout_settle, top_up_start
from billing.services.refusals import BillingError
from core.forms import add_service_error
from core.refusals import Refused
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
    session = request.GET.get("session", "")
    if session and settings.STRIPE_ENABLED and role_in(request.user, organization) in ROLES_THAT_PAY:
        # Back from Stripe: read what happened there now rather than wait for the webhook.
        checkout_settle(session_id=session[:200], organization=organization)
    return render_in_zone(request, "billing/billing.html", _page_context(request, organization))


def _page_context(request: AuthenticatedHttpRequest, organization: Organization) -> dict[str, object]:
    now = timezone.now()
    grants = credits_left(organization, now)
    return {
        "org": organization,
        "spend": spend_this_month(organization, now),
        "grants": list(grants),
        "credits_total": credits_total(grants),
        "invoices": invoices_visible_to(_scope(request)),
        "stripe_enabled": settings.STRIPE_ENABLED,
        "stripe_outcome": request.GET.get("stripe", ""),
        **_balance_context(request, organization),
    }


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


def _balance_context(request: AuthenticatedHttpRequest, organization: Organization) -> dict[str, object]:
    found = balance_of(organization, timezone.now())
    account = found.account
    initial = {name: getattr(account, name) for name in SETTINGS_FIELDS}
    return {
        "balance": found,
        "top_up_form": TopUpForm(),
        "settings_form": SpendSettingsForm(initial=initial),
        "can_pay": role_in(request.user, organization) in ROLES_THAT_PAY,
        "free_cancel_hours": int(settings.RESERVED_FREE_CANCEL.total_seconds() // 3600),
        "grace_minutes": int(settings.RUN_OUT_GRACE.total_seconds() // 60),
    }


@organization_role_required(ROLES_THAT_PAY)
@require_POST
def billing_top_up(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Send the owner to Stripe Checkout to top up."""
    organization = viewer_of(request).organization
    assert organization is not None
    form = TopUpForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect("billing")
    try:
        return redirect(
            top_up_start(actor=request.user, organization=organization, amount=form.cleaned_data["amount"])
        )
    except (Refused, ValidationError) as error:
        messages.error(request, getattr(error, "detail", None) or " ".join(error.messages))  # type: ignore[union-attr]
    return redirect("billing")


@organization_role_required(ROLES_THAT_PAY)
@require_POST
def billing_card(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Send the owner to Stripe Checkout (setup mode) to save a card."""
    organization = viewer_of(request).organization
    assert organization is not None
    try:
        return redirect(card_setup_start(actor=request.user, organization=organization))
    except Refused as error:
        messages.error(request, error.detail)
    return redirect("billing")


@organization_role_required(ROLES_THAT_PAY)
@require_POST
def billing_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Save the spend limit, the low-balance warning and automatic top-up."""
    organization = viewer_of(request).organization
    assert organization is not None
    form = SpendSettingsForm(request.POST)
    if form.is_valid():
        try:
            account_settings_update(
                actor=request.user, organization=organization, wanted=SpendSettings(**form.cleaned_data)
            )
            messages.success(request, "Spend settings saved.")
            return redirect("billing")
        except ValidationError as error:
            add_service_error(form, error)
    context = {**_page_context(request, organization), "settings_form": form}
    response = render_in_zone(request, "billing/billing.html", context)
    response.status_code = 400
    return response
