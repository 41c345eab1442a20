"""The Django admin of billing: invoices, their lines, usage and the ledger are read-only (only the
billing services write them; finalized invoices are frozen in PostgreSQL too); a credit grant is
made by `credit_grant_create`, which also posts it to the ledger and audits it."""

from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

from billing.models import CreditGrant, Invoice, InvoiceLine, LedgerEntry, StripeEvent, UsageHour
from billing.services.credits import credit_grant_create
from core.admin import ReadOnlyAdmin, ReadOnlyInline

LINE_FIELDS = [
    "position",
    "kind",
    "description",
    "region",
    "gpus",
    "gpu_hours",
    "price_per_gpu_hour",
    "amount",
]


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = tuple(LINE_FIELDS)
    readonly_fields = LINE_FIELDS


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

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(UsageHour)
class UsageHourAdmin(ReadOnlyAdmin):
    list_display = ["hour", "organization", "lease", "region", "gpu_seconds", "amount"]
    list_filter = ["region"]
    date_hierarchy = "hour"


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "organization", "sequence", "kind", "amount", "balance_after"]
    list_filter = ["kind"]


class CreditGrantAdminForm(ModelForm):
    """The service's own rules, checked before it runs so that the admin answers with a form error."""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("amount") is not None and data["amount"] <= 0:
            self.add_error("amount", "A credit grant must be worth more than zero.")
        if data.get("expires_at") is not None and data["expires_at"] <= timezone.now():
            self.add_error("expires_at", "A credit grant must expire in the future.")
        return data


@admin.register(CreditGrant)
class CreditGrantAdmin(admin.ModelAdmin):
    """Granted through the service (ledger entry, audit row); never edited or deleted afterwards."""

    list_display = ["organization", "source", "amount", "remaining", "granted_at", "expires_at"]
    fields = ["organization", "source", "amount", "expires_at", "note"]
    form = CreditGrantAdminForm

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: CreditGrant, form: ModelForm, change: bool) -> None:
        granted = credit_grant_create(
            actor=request.user,  # type: ignore[arg-type]
            organization=obj.organization,
            amount=obj.amount,
            expires_at=obj.expires_at,
            source=obj.source,
            note=obj.note,
        )
        obj.pk, obj.public_id, obj.remaining = granted.pk, granted.public_id, granted.remaining


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "object_id", "received_at"]
