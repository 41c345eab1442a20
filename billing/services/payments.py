"""A card on file and top-ups through Stripe's hosted pages, and automatic top-up off-session.

No Stripe script runs on our pages (the content security policy stays strict): the owner is sent
to Stripe Checkout, in setup mode to save a card or payment mode to top up, and comes back to the
billing page. What happened is read from Stripe (the session, its intent), never taken from the
browser's return or a webhook's body, and recorded once: a top-up by its Checkout session or
PaymentIntent id (ledger `external_id`), a card by the organization's account row.
Stripe is called outside our transactions, each create with an idempotency key from our ids.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services.audit import audit_record
from billing.choices import TopUpMethod, TopUpStatus
from billing.models import BillingAccount, TopUp
from billing.services import stripe_gateway as gateway
from billing.services.ledger import account_locked
from billing.services.payment import billing_page
from billing.services.refusals import CardPaymentsOff
from billing.services.top_ups import top_up_amount, top_up_record
from clusters.services.lifecycle import owner_emails


def _client() -> stripe.StripeClient:
    if not settings.STRIPE_ENABLED:
        raise CardPaymentsOff("Card payments are not enabled on this installation.")
    return gateway.stripe_client()


def _return_url(outcome: str) -> str:
    return f"{settings.SITE_URL}{reverse('billing')}?stripe={outcome}"


def card_setup_start(*, actor: User, organization: Organization) -> str:
    """A Checkout session in setup mode; the URL of Stripe's page where the owner enters the card."""
    client = _client()
    customer = gateway.customer_id_for(organization, client)
    attempt = timezone.now().strftime("%Y%m%dT%H%M%S%f")
    _, url = gateway.checkout_session_create(
        client,
        {
            "mode": "setup",
            "customer": customer,
            "currency": "usd",
            "payment_method_types": ["card"],
            "success_url": _return_url("card_saved") + "&session={CHECKOUT_SESSION_ID}",
            "cancel_url": _return_url("cancelled"),
            "metadata": {"voltpark_organization": str(organization.public_id), "purpose": "card"},
        },
        idempotency_key=f"vp-card-setup-{organization.public_id}-{attempt}",
    )
    audit_record(actor=actor, action="billing.card_setup_start", obj=organization, organization=organization)
    return url


def top_up_start(*, actor: User, organization: Organization, amount: Decimal | str) -> str:
    """A Checkout session in payment mode for `amount` USD; the URL of Stripe's page."""
    value = top_up_amount(amount)
    client = _client()
    customer = gateway.customer_id_for(organization, client)
    top_up = TopUp.objects.create(
        organization=organization, method=TopUpMethod.CHECKOUT, amount=value, requested_by=actor
    )
    session_id, url = gateway.checkout_session_create(
        client,
        {
            "mode": "payment",
            "customer": customer,
            "payment_method_types": ["card"],
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": int(value * 100),
                        "product_data": {"name": "Voltpark balance top-up"},
                    },
                }
            ],
            # The card paying the top-up is kept for automatic top-ups and invoices.
            "payment_intent_data": {"setup_future_usage": "off_session"},
            "success_url": _return_url("paid") + "&session={CHECKOUT_SESSION_ID}",
            "cancel_url": _return_url("cancelled"),
            "metadata": {
                "voltpark_organization": str(organization.public_id),
                "voltpark_top_up": str(top_up.public_id),
            },
        },
        idempotency_key=f"vp-top-up-{top_up.public_id}",
    )
    TopUp.objects.filter(pk=top_up.pk).update(stripe_checkout_session=session_id)
    audit_record(
        actor=actor,
        action="balance.top_up_start",
        obj=top_up,
        organization=organization,
        after={"amount": str(value)},
    )
    return url


@dataclass(frozen=True)
class CheckoutOutcome:
    """What a completed Checkout session did, as read from Stripe."""

    organization: Organization
    card: tuple[str, dict[str, Any]] | None = None
    only_if_no_card: bool = False
    paid_cents: int = 0
    session_id: str = ""
    intent_id: str = ""


def checkout_read(*, session_id: str) -> CheckoutOutcome | None:
    """Read a Checkout session from Stripe (and make its card the customer's default); None if not done."""
    client = gateway.stripe_client()
    session = gateway.checkout_session(client, session_id)
    organization = _organization_of(session.get("customer"))
    if organization is None or session.get("status") != "complete":
        return None
    if session.get("mode") == "setup":
        method = gateway.setup_intent_payment_method(client, str(session.get("setup_intent") or ""))
        return CheckoutOutcome(organization, card=_card(client, organization, method), session_id=session_id)
    if session.get("payment_status") != "paid":
        return None
    intent = gateway.payment_intent(client, str(session.get("payment_intent") or ""))
    method = str(intent.get("payment_method") or "")
    return CheckoutOutcome(
        organization,
        card=_card(client, organization, method) if method else None,
        only_if_no_card=True,
        paid_cents=int(session.get("amount_total") or 0),
        session_id=session_id,
        intent_id=str(intent.get("id") or ""),
    )


def _card(
    client: stripe.StripeClient, organization: Organization, method: str
) -> tuple[str, dict[str, Any]] | None:
    if not method:
        return None
    gateway.customer_default_payment_method(client, gateway.customer_id_for(organization, client), method)
    return method, gateway.card_of(client, method)


@transaction.atomic
def checkout_apply(outcome: CheckoutOutcome) -> None:
    """Save the card and credit the top-up of a completed session; doing it twice changes nothing."""
    if outcome.card is not None:
        _record_card(outcome.organization, *outcome.card, only_if_none=outcome.only_if_no_card)
    if outcome.paid_cents > 0:
        top_up_record(
            organization=outcome.organization,
            amount=Decimal(outcome.paid_cents) / 100,
            external_id=f"checkout:{outcome.session_id}",
            description=f"Top-up by card ({outcome.intent_id})",
            top_up=TopUp.objects.filter(stripe_checkout_session=outcome.session_id).first(),
        )


def checkout_settle(*, session_id: str, organization: Organization | None = None) -> bool:
    """Read and apply a session now (the owner is back from Stripe before the webhook, perhaps)."""
    outcome = checkout_read(session_id=session_id)
    if outcome is None or (organization is not None and outcome.organization != organization):
        return False
    checkout_apply(outcome)
    return True


def _organization_of(customer_id: object) -> Organization | None:
    return Organization.objects.filter(stripe_customer__stripe_id=str(customer_id or "")).first()


@transaction.atomic
def _record_card(organization: Organization, method: str, card: dict[str, Any], only_if_none: bool) -> None:
    account = account_locked(organization)
    if account.card_payment_method == method or (only_if_none and account.has_card):
        return
    account.card_payment_method, account.card_brand, account.card_last4 = method, card["brand"], card["last4"]
    account.card_exp_month, account.card_exp_year = card["exp_month"], card["exp_year"]
    fields = ["card_payment_method", "card_brand", "card_last4", "card_exp_month", "card_exp_year"]
    if account.auto_top_up_amount is None:
        # A card on file tops up by itself unless the owner says otherwise (the billing page shows it).
        account.auto_top_up_threshold = Decimal(settings.AUTO_TOP_UP_DEFAULT_THRESHOLD_USD)
        account.auto_top_up_amount = Decimal(settings.AUTO_TOP_UP_DEFAULT_AMOUNT_USD)
        fields += ["auto_top_up_threshold", "auto_top_up_amount"]
    account.auto_top_up_failures = 0
    account.save(update_fields=[*fields, "auto_top_up_failures"])
    audit_record(
        actor=None,
        action="billing.card_saved",
        obj=account,
        organization=organization,
        after={"brand": card["brand"], "last4": card["last4"]},
    )


STALE_ATTEMPT = timedelta(minutes=10)


def auto_top_up(*, organization_id: int) -> TopUp | None:
    """Charge the saved card off-session for the owner's amount, once per attempt; None if not due.

    An attempt row is claimed under the account's lock (no second attempt while one is pending);
    the charge carries the attempt's id as idempotency key, so a retried task charges once.
    A decline counts against AUTO_TOP_UP_MAX_ATTEMPTS and emails the owners; at the limit, automatic
    top-up stops until the owner changes the card or the settings.
    """
    top_up = _claim_attempt(organization_id)
    if top_up is None:
        return None
    account = BillingAccount.objects.get(pk=organization_id)
    client = gateway.stripe_client()
    customer = gateway.customer_id_for(account.organization, client)
    answer = gateway.off_session_charge(
        client,
        customer_id=customer,
        payment_method_id=account.card_payment_method,
        cents=int(top_up.amount * 100),
        metadata={"voltpark_top_up": str(top_up.public_id)},
        idempotency_key=f"vp-auto-top-up-{top_up.public_id}",
    )
    if answer["id"]:
        TopUp.objects.filter(pk=top_up.pk).update(stripe_payment_intent=answer["id"])
    if answer["status"] == "succeeded":
        top_up_record(
            organization=organization_id,
            amount=top_up.amount,
            external_id=f"payment_intent:{answer['id']}",
            description=f"Automatic top-up by card ({answer['id']})",
            top_up=top_up,
        )
    elif answer["status"] in ("failed", "requires_payment_method", "requires_action", "canceled"):
        auto_top_up_declined(top_up=top_up, reason=answer["error"] or "The card was declined.")
    top_up.refresh_from_db()
    return top_up


@transaction.atomic
def _claim_attempt(organization_id: int) -> TopUp | None:
    account = account_locked(organization_id)
    pending = TopUp.objects.filter(
        organization_id=organization_id, method=TopUpMethod.AUTO, status=TopUpStatus.PENDING
    ).first()
    if pending is not None:
        # A task that died after charging left its attempt pending: the same key asks Stripe again.
        stale = pending.created_at < timezone.now() - STALE_ATTEMPT
        return pending if stale else None
    if (
        not account.has_card
        or account.auto_top_up_amount is None
        or account.auto_top_up_failures >= settings.AUTO_TOP_UP_MAX_ATTEMPTS
    ):
        return None
    return TopUp.objects.create(
        organization_id=organization_id, method=TopUpMethod.AUTO, amount=account.auto_top_up_amount
    )


@transaction.atomic
def auto_top_up_declined(*, top_up: TopUp, reason: str) -> bool:
    """Mark the attempt declined once; count it, and email the owners."""
    if not TopUp.objects.filter(pk=top_up.pk, status=TopUpStatus.PENDING).update(
        status=TopUpStatus.FAILED, failure=reason[:300], settled_at=timezone.now()
    ):
        return False
    account = account_locked(top_up.organization_id)
    account.auto_top_up_failures += 1
    account.save(update_fields=["auto_top_up_failures"])
    left = settings.AUTO_TOP_UP_MAX_ATTEMPTS - account.auto_top_up_failures
    organization = account.organization
    audit_record(
        actor=None,
        action="balance.auto_top_up_declined",
        obj=top_up,
        organization=organization,
        after={"reason": reason, "failures": account.auto_top_up_failures},
    )
    recipients = owner_emails([organization.pk]).get(organization.pk, [])
    then = (
        "It will be tried again."
        if left > 0
        else "Automatic top-up is now off until the card or settings change."
    )
    body = (
        f"An automatic top-up of {top_up.amount} USD for {organization.name} was declined: {reason}\n"
        f"{then} Update the card or top up on {billing_page()}."
    )
    if recipients:
        transaction.on_commit(
            lambda: send_mail(
                "Voltpark: automatic top-up declined", body, None, recipients, fail_silently=True
            )
        )
    return True
