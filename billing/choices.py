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
    SLA_CREDIT = "sla_credit", "SLA credit"
    PROGRAM_CREDIT = "program_credit", "Program credit"
    CORRECTION = "correction", "Correction"


class CreditSource(models.TextChoices):
    EARLY_STAGE = "early_stage", "Early-stage program"
    GOODWILL = "goodwill", "Goodwill"


# Each numbered series has its own gapless counter per year.
INVOICE_NUMBER_PREFIX = {InvoiceKind.INVOICE: "VP", InvoiceKind.CREDIT_NOTE: "VPCN"}
