from django.urls import path

from billing import views

# --- Browser pages for an organization's owners and finance members (issue 6).
urlpatterns = [
    path("billing/", views.billing, name="billing"),
    path("billing/invoices/<str:invoice_id>/", views.invoice_detail, name="invoice-detail"),
    path("billing/invoices/<str:invoice_id>/pdf/", views.invoice_pdf, name="invoice-pdf"),
    path("billing/invoices/<str:invoice_id>/pay/", views.invoice_pay, name="invoice-pay"),
]
