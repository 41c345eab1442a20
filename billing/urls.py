"""Routes of billing: an organization's billing pages, staff finance, and the billing API."""

from django.urls import path

from billing.api import accounts, balance, exports, invoices, revenue, usage, webhooks
from billing.views import finance
from billing.views import invoices as invoice_pages

urlpatterns = [
    path("billing/", invoice_pages.billing, name="billing"),
    path("billing/top-up/", invoice_pages.billing_top_up, name="billing-top-up"),
    path("billing/card/", invoice_pages.billing_card, name="billing-card"),
    path("billing/settings/", invoice_pages.billing_settings, name="billing-settings"),
    path("billing/invoices/<str:invoice_id>/", invoice_pages.invoice_detail, name="invoice-detail"),
    path("billing/invoices/<str:invoice_id>/pdf/", invoice_pages.invoice_pdf, name="invoice-pdf"),
    path("billing/invoices/<str:invoice_id>/pay/", invoice_pages.invoice_pay, name="invoice-pay"),
    path("staff/finance/", finance.finance, name="finance"),
    path("staff/finance/close-month/", finance.finance_close_month, name="finance-close-month"),
    path("api/v1/balance/", balance.BalanceApi.as_view(), name="api-balance"),
    path("api/v1/balance/ledger/", balance.LedgerApi.as_view(), name="api-balance-ledger"),
    path("api/v1/balance/settings/", balance.BalanceSettingsApi.as_view(), name="api-balance-settings"),
    path("api/v1/balance/top-ups/", balance.TopUpApi.as_view(), name="api-balance-top-ups"),
    path("api/v1/balance/card/", balance.CardSetupApi.as_view(), name="api-balance-card"),
    path("api/v1/organizations/<slug:slug>/account/", accounts.AccountApi.as_view(), name="api-account"),
    path(
        "api/v1/organizations/<slug:slug>/account/terms/",
        accounts.TermsApi.as_view(),
        name="api-account-terms",
    ),
    path(
        "api/v1/organizations/<slug:slug>/account/transfers/",
        accounts.TransferApi.as_view(),
        name="api-account-transfers",
    ),
    path(
        "api/v1/organizations/<slug:slug>/account/lift-suspension/",
        accounts.LiftSuspensionApi.as_view(),
        name="api-account-lift-suspension",
    ),
    path("api/v1/invoices/", invoices.InvoiceListApi.as_view(), name="api-invoices"),
    path("api/v1/invoices/<str:invoice_id>/", invoices.InvoiceDetailApi.as_view(), name="api-invoice"),
    path("api/v1/invoices/<str:invoice_id>/pdf/", invoices.InvoicePdfApi.as_view(), name="api-invoice-pdf"),
    path(
        "api/v1/invoices/<str:invoice_id>/finalize/",
        invoices.InvoiceFinalizeApi.as_view(),
        name="api-invoice-finalize",
    ),
    path(
        "api/v1/invoices/<str:invoice_id>/mark-paid/",
        invoices.InvoiceMarkPaidApi.as_view(),
        name="api-invoice-mark-paid",
    ),
    path(
        "api/v1/invoices/<str:invoice_id>/void/", invoices.InvoiceVoidApi.as_view(), name="api-invoice-void"
    ),
    path(
        "api/v1/invoices/<str:invoice_id>/credit-notes/",
        invoices.CreditNoteCreateApi.as_view(),
        name="api-invoice-credit-note",
    ),
    path("api/v1/exports/invoices.csv", exports.InvoicesCsvApi.as_view(), name="api-export-invoices-csv"),
    path("api/v1/exports/invoices.xlsx", exports.InvoicesXlsxApi.as_view(), name="api-export-invoices-xlsx"),
    path(
        "api/v1/exports/invoice-lines.csv", exports.InvoiceLinesCsvApi.as_view(), name="api-export-lines-csv"
    ),
    path(
        "api/v1/exports/invoice-lines.xlsx",
        exports.InvoiceLinesXlsxApi.as_view(),
        name="api-export-lines-xlsx",
    ),
    path("api/v1/exports/focus.csv", exports.FocusCsvApi.as_view(), name="api-export-focus"),
    path("api/v1/usage/", usage.UsageApi.as_view(), name="api-usage"),
    path("api/v1/revenue/", revenue.RevenueApi.as_view(), name="api-revenue"),
    path("api/v1/stripe/webhook/", webhooks.StripeWebhookApi.as_view(), name="api-stripe-webhook"),
]
