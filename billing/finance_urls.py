"""Routes of the staff finance page (issue 6); the customer billing pages have their own."""

from django.urls import path

from billing import views_finance

urlpatterns = [
    path("staff/finance/", views_finance.finance, name="finance"),
    path("staff/finance/close-month/", views_finance.finance_close_month, name="finance-close-month"),
]
