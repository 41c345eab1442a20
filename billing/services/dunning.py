"""Collecting invoices on terms: payments Stripe reports, reminders before and after the due date,
suspension once an invoice is DUNNING_SUSPEND_AFTER_DAYS overdue (lifted when it is paid), and
money Stripe takes back (refunds, disputes). Each reminder is recorded once (`InvoiceReminder`),
each payment, refund and dispute once in the ledger by its Stripe id.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization
from billing.choices import InvoiceKind, InvoiceStatus, LedgerKind
from billing.models import BillingAccount, Invoice, InvoiceReminder
from billing.services.accounts import account_lift_suspension, account_suspend
from billing.services.invoicing import invoice_mark_paid, invoice_void
from billing.services.ledger import Posting, ledger_post
from billing.services.payment import billing_page
from clusters.services.lifecycle import owner_emails

OVERDUE_REASON = "an invoice is overdue"
DISPUTE_REASON = "a card payment is disputed"


def _owners(organization: Organization) -> list[str]:
    recipients = owner_emails([organization.pk]).get(organization.pk, [])
    if organization.billing_email and organization.billing_email not in recipients:
        recipients.append(organization.billing_email)
    return recipients


def _email(recipients: list[str], subject: str, body: str) -> None:
    if recipients:
        transaction.on_commit(lambda: send_mail(subject, body, None, recipients, fail_silently=True))


@transaction.atomic
def invoice_apply_stripe_state(
    *,
    stripe_id: str,
    status: str | None,
    paid_at: int | None,
    amount_paid: int,
    failed: bool,
    event_id: str,
) -> str:
    """Apply what Stripe says of one of our invoices: paid, void, or a failed charge."""
    invoice = Invoice.objects.select_for_update().filter(stripe_invoice_id=stripe_id).first()
    if invoice is None:
        return "ignored"
    if status == "paid" and invoice.status == InvoiceStatus.OPEN:
        when = datetime.fromtimestamp(paid_at, tz=UTC) if paid_at else None
        invoice_mark_paid(actor=None, invoice=invoice, paid_at=when, via=f"stripe:{event_id}")
        _payment_received(invoice, Decimal(amount_paid) / 100 if amount_paid else invoice.total)
    elif status == "void" and invoice.status == InvoiceStatus.OPEN:
        invoice_void(actor=None, invoice=invoice, reason="Voided in Stripe", via=f"stripe:{event_id}")
    elif failed and invoice.status == InvoiceStatus.OPEN:
        _email(
            _owners(invoice.organization),
            f"Voltpark: payment of invoice {invoice.number} failed",
            f"Charging the card on file for invoice {invoice.number} ({invoice.total} USD) failed.\n"
            f"Pay it on {billing_page()} or update the card before {_due(invoice)}.",
        )
    return "processed"


def _due(invoice: Invoice) -> str:
    return f"{invoice.due_at:%Y-%m-%d}" if invoice.due_at else "its due date"


def _payment_received(invoice: Invoice, amount: Decimal) -> None:
    ledger_post(
        organization=invoice.organization_id,
        posting=Posting(
            kind=LedgerKind.INVOICE_PAYMENT,
            amount=amount,
            description=f"Payment of invoice {invoice.number}",
            invoice_id=invoice.pk,
            external_id=f"invoice-paid-{invoice.stripe_invoice_id or invoice.public_id}",
        ),
    )
    account = BillingAccount.objects.filter(pk=invoice.organization_id).first()
    if account and account.suspended_reason == OVERDUE_REASON and not _overdue(invoice.organization_id):
        account_lift_suspension(
            actor=None, organization=invoice.organization, reason=f"{invoice.number} paid"
        )


def _overdue(organization_id: int, now: datetime | None = None) -> bool:
    cutoff = (now or timezone.now()) - timedelta(days=settings.DUNNING_SUSPEND_AFTER_DAYS)
    return Invoice.objects.filter(
        organization_id=organization_id,
        kind=InvoiceKind.INVOICE,
        status=InvoiceStatus.OPEN,
        due_at__lte=cutoff,
    ).exists()


def dunning_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Remind about open invoices around their due date; suspend organizations too long overdue."""
    now = now or timezone.now()
    sent = suspended = 0
    open_invoices = Invoice.objects.filter(
        kind=InvoiceKind.INVOICE, status=InvoiceStatus.OPEN, due_at__isnull=False
    ).select_related("organization")
    for invoice in open_invoices.order_by("due_at"):
        assert invoice.due_at is not None
        for days in settings.DUNNING_REMINDER_DAYS:
            if invoice.due_at + timedelta(days=days) <= now:
                sent += _remind(invoice, days)
        if invoice.due_at + timedelta(days=settings.DUNNING_SUSPEND_AFTER_DAYS) <= now:
            suspended += _suspend_overdue(invoice)
    return {"reminders": sent, "suspended": suspended}


def _remind(invoice: Invoice, days: int) -> int:
    """Send the reminder `days` from the due date once (the unique row decides who sends it)."""
    try:
        with transaction.atomic():
            InvoiceReminder.objects.create(invoice=invoice, days_from_due=days)
            when = f"is due on {_due(invoice)}" if days < 0 else f"was due on {_due(invoice)}"
            consequence = (
                f"Bookings are suspended {settings.DUNNING_SUSPEND_AFTER_DAYS} days after the due date."
                if days >= 0
                else ""
            )
            _email(
                _owners(invoice.organization),
                f"Voltpark: invoice {invoice.number} {'is overdue' if days >= 0 else 'is due soon'}",
                f"Invoice {invoice.number} for {invoice.total} USD {when}. Pay it on {billing_page()}. "
                + consequence,
            )
    except IntegrityError:
        return 0
    return 1


def _suspend_overdue(invoice: Invoice) -> int:
    if not account_suspend(actor=None, organization=invoice.organization, reason=OVERDUE_REASON):
        return 0
    _email(
        _owners(invoice.organization),
        "Voltpark: bookings suspended",
        f"Invoice {invoice.number} is {settings.DUNNING_SUSPEND_AFTER_DAYS} days overdue, so new bookings "
        f"are suspended and on-demand leases will be released in {settings.RUN_OUT_GRACE}. "
        f"Paying it on {billing_page()} lifts the suspension.",
    )
    return 1


def _organization_of(customer_id: object) -> Organization | None:
    return Organization.objects.filter(stripe_customer__stripe_id=str(customer_id or "")).first()


@transaction.atomic
def charge_refunds_apply(*, charge: dict[str, Any]) -> str:
    """Each refund of a charge leaves the balance once (it was money in)."""
    organization = _organization_of(charge.get("customer"))
    if organization is None:
        return "ignored"
    for refund in charge.get("refund_list", []):
        if refund.get("status") in ("succeeded", "pending") and int(refund.get("amount") or 0) > 0:
            ledger_post(
                organization=organization,
                posting=Posting(
                    kind=LedgerKind.REFUND,
                    amount=-Decimal(int(refund["amount"])) / 100,
                    description=f"Refund of card payment {charge.get('id')}",
                    external_id=f"refund:{refund['id']}",
                ),
            )
    return "processed"


@transaction.atomic
def dispute_apply(*, dispute: dict[str, Any]) -> str:
    """A dispute withdraws the money, suspends bookings and alerts staff; a won dispute gives it back."""
    organization = _organization_of(dispute.get("customer"))
    if organization is None:
        return "ignored"
    amount = Decimal(int(dispute.get("amount") or 0)) / 100
    withdrawn = ledger_post(
        organization=organization,
        posting=Posting(
            kind=LedgerKind.DISPUTE,
            amount=-amount,
            description=f"Card payment {dispute.get('charge')} disputed ({dispute.get('reason') or '?'})",
            external_id=f"dispute:{dispute['id']}",
        ),
    )
    if withdrawn is not None:
        account_suspend(actor=None, organization=organization, reason=DISPUTE_REASON)
        _email(
            list(settings.STAFF_NOTIFY_EMAILS),
            f"Voltpark: dispute on {organization.name}'s card payment",
            f"{organization.name} ({organization.slug}) disputed {amount} USD "
            f"(charge {dispute.get('charge')}, "
            f"dispute {dispute['id']}). The organization is suspended: no new bookings.",
        )
    if dispute.get("status") == "won":
        ledger_post(
            organization=organization,
            posting=Posting(
                kind=LedgerKind.DISPUTE_WON,
                amount=amount,
                description=f"Dispute {dispute['id']} won: payment reinstated",
                external_id=f"dispute-won:{dispute['id']}",
            ),
        )
    return "processed"
