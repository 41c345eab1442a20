from django.contrib import admin

from billing.models import CreditGrant, Invoice, InvoiceLine, StripeEvent


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = [
        "position",
        "kind",
        "description",
        "region",
        "gpus",
        "gpu_hours",
        "price_per_gpu_hour",
        "amount",
    ]
    fields = list(readonly_fields)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Read-only: invoices change only through the billing services."""

    list_display = ["number", "organization", "kind", "status", "period_start", "total", "issued_at"]
    list_filter = ["status", "kind", "period_start"]
    search_fields = ["number", "organization__name"]
    inlines = [InvoiceLineInline]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(CreditGrant)
class CreditGrantAdmin(admin.ModelAdmin):
    list_display = ["organization", "source", "amount", "remaining", "granted_at", "expires_at"]
    readonly_fields = ["remaining"]


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "object_id", "received_at"]
