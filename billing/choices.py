"""Named states and kinds of invoices, their lines and credits."""

from django.db import models


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class LineKind(models.TextChoices):
    USAGE = "usage", "GPU usage"
    COMMITMENT = "commitment", "Reserved commitment"
    SLA_CREDIT = "sla_credit", "SLA credit"
    PROGRAM_CREDIT = "program_credit", "Program credit"
    CORRECTION = "correction", "Correction"


class CreditSource(models.TextChoices):
    EARLY_STAGE = "early_stage", "Early-stage program"
    GOODWILL = "goodwill", "Goodwill"
    APPROVED = "approved", "Approved credit"


# Lines that make up an invoice's subtotal; the others are credits.
CHARGE_LINES = (LineKind.USAGE, LineKind.COMMITMENT)

# Each numbered series has its own gapless counter per year.
INVOICE_NUMBER_PREFIX = {InvoiceKind.INVOICE: "VP", InvoiceKind.CREDIT_NOTE: "VPCN"}


class PaymentTerms(models.TextChoices):
    PREPAID = "prepaid", "Prepaid balance"
    INVOICED = "invoiced", "Invoice terms"


class LedgerKind(models.TextChoices):
    TOP_UP = "top_up", "Top-up"
    USAGE = "usage", "On-demand usage"
    COMMITMENT = "commitment", "Reserved commitment"
    COMMITMENT_REFUND = "commitment_refund", "Reserved commitment refunded"
    CREDIT = "credit", "Credit granted"
    CREDIT_EXPIRY = "credit_expiry", "Credit expired"
    SLA_CREDIT = "sla_credit", "SLA credit"
    INVOICE_PAYMENT = "invoice_payment", "Invoice payment"
    INVOICE_VOID = "invoice_void", "Invoice voided"
    CREDIT_NOTE = "credit_note", "Credit note"
    REFUND = "refund", "Refund"
    DISPUTE = "dispute", "Disputed payment withdrawn"
    DISPUTE_WON = "dispute_won", "Disputed payment reinstated"
    CORRECTION = "correction", "Correction"


# Charges of the month that its invoice bills: the invoice's subtotal less the refunds it carries.
LEDGER_CHARGES = (LedgerKind.USAGE, LedgerKind.COMMITMENT, LedgerKind.COMMITMENT_REFUND)


class TopUpStatus(models.TextChoices):
    PENDING = "pending", "Waiting for payment"
    SUCCEEDED = "succeeded", "Paid"
    FAILED = "failed", "Declined"
    EXPIRED = "expired", "Expired"


class TopUpMethod(models.TextChoices):
    CHECKOUT = "checkout", "Stripe Checkout"
    AUTO = "auto", "Automatic top-up"
