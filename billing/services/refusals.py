"""Refusals of billing services, each with a stable code the API passes on."""


class BillingError(Exception):
    """A billing operation refused; `code` is stable, the message is a sentence for people."""

    code = "billing_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvoiceStateError(BillingError):
    """The invoice is not in a state that allows this change."""

    code = "invoice_state"


class MonthNotOver(BillingError):
    """A month can only be closed once it has ended."""

    code = "month_not_over"


class CreditNoteTooLarge(BillingError):
    """A credit note may not credit more than what is left of the invoice."""

    code = "credit_note_too_large"
