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


class PaymentRefused(Refused):
    """Booking or spending refused for money: the organization must pay, or change its limits first."""

    status = 402
    code = "payment_required"


class PaymentRequired(PaymentRefused):
    """No way to pay yet: no card on file, no balance, no credit, no invoice terms."""

    code = "payment_required"


class InsufficientBalance(PaymentRefused):
    """The balance does not cover a reserved lease's commitment."""

    code = "insufficient_balance"


class BalanceExhausted(PaymentRefused):
    """The balance has run out: new bookings wait for a top-up."""

    code = "balance_exhausted"


class SpendLimitReached(PaymentRefused):
    """The booking would take the month's spend past the owner's limit."""

    code = "spend_limit"
    field = "gpus"


class CreditLimitReached(PaymentRefused):
    """An invoiced organization would owe more than its credit limit."""

    code = "credit_limit"
    field = "gpus"


class AccountSuspended(PaymentRefused):
    """Suspended for an overdue invoice or a disputed payment: no new bookings until it is lifted."""

    code = "account_suspended"


class StripeUnavailable(BillingError):
    """Stripe did not answer: worth trying again."""

    code = "stripe_unavailable"
    status = 503


class CardPaymentsOff(BillingError):
    """Stripe is switched off on this installation: trying again will not help (not a 503)."""

    code = "stripe_off"
    status = 409
