"""Refusals of billing services, each with a stable code and status the API passes on."""

from core.refusals import Refused


class BillingError(Refused):
    """A billing operation refused."""

    code = "billing_error"


class InvoiceStateError(BillingError):
    """The invoice is not in a state that allows this change."""

    code = "invoice_state"


class MonthNotOver(BillingError):
    """A month can only be closed once it has ended."""

    code = "month_not_over"
    field = "month"


class CreditNoteTooLarge(BillingError):
    """A credit note may not credit more than what is left of the invoice."""

    code = "credit_note_too_large"
    field = "amount"
