from django.urls import path

from billing import api

urlpatterns = [
    path("invoices/", api.InvoiceListApi.as_view(), name="api-invoices"),
    path("invoices/<str:invoice_id>/", api.InvoiceDetailApi.as_view(), name="api-invoice"),
    path("invoices/<str:invoice_id>/pdf/", api.InvoicePdfApi.as_view(), name="api-invoice-pdf"),
    path(
        "invoices/<str:invoice_id>/finalize/", api.InvoiceFinalizeApi.as_view(), name="api-invoice-finalize"
    ),
    path(
        "invoices/<str:invoice_id>/mark-paid/", api.InvoiceMarkPaidApi.as_view(), name="api-invoice-mark-paid"
    ),
    path("invoices/<str:invoice_id>/void/", api.InvoiceVoidApi.as_view(), name="api-invoice-void"),
    path(
        "invoices/<str:invoice_id>/credit-notes/",
        api.CreditNoteCreateApi.as_view(),
        name="api-invoice-credit-note",
    ),
    path("exports/invoices.csv", api.InvoicesCsvApi.as_view(), name="api-export-invoices-csv"),
    path("exports/invoices.xlsx", api.InvoicesXlsxApi.as_view(), name="api-export-invoices-xlsx"),
    path("exports/invoice-lines.csv", api.InvoiceLinesCsvApi.as_view(), name="api-export-lines-csv"),
    path("exports/invoice-lines.xlsx", api.InvoiceLinesXlsxApi.as_view(), name="api-export-lines-xlsx"),
    path("exports/focus.csv", api.FocusCsvApi.as_view(), name="api-export-focus"),
    path("usage/", api.UsageApi.as_view(), name="api-usage"),
    path("revenue/", api.RevenueApi.as_view(), name="api-revenue"),
    path("stripe/webhook/", api.stripe_webhook, name="api-stripe-webhook"),
]
