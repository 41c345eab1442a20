"""The Django admin of accounts: what staff may edit directly, and what goes through a service."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from accounts.models import (
    GPU_QUOTA_MAX,
    ApiToken,
    AuditEntry,
    Invitation,
    Membership,
    Organization,
    SshKey,
    User,
)
from accounts.services.organizations import organization_quota_set
from accounts.services.ssh_keys import keys_withdraw
from core.admin import ReadOnlyAdmin


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_finance_staff", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "full_name"]}),
        ("Roles", {"fields": ["is_active", "is_staff", "is_finance_staff", "is_superuser"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


class OrganizationAdminForm(ModelForm):
    def clean_gpu_quota(self) -> int:
        quota = self.cleaned_data["gpu_quota"]
        if quota > GPU_QUOTA_MAX:
            raise ValidationError(f"A GPU quota is between 0 and {GPU_QUOTA_MAX}.")
        return quota


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    """A change of GPU quota is made by `organization_quota_set` (locked, bounded, audited); the
    early-stage approval only by the program's decision."""

    list_display = ["name", "slug", "kind", "gpu_quota", "early_stage_approved", "created_at"]
    list_filter = ["kind", "early_stage_approved"]
    search_fields = ["name", "slug", "billing_email"]
    readonly_fields = ["early_stage_approved"]
    form = OrganizationAdminForm
    inlines = [MembershipInline]

    def save_model(self, request: HttpRequest, obj: Organization, form: ModelForm, change: bool) -> None:
        if not change or "gpu_quota" not in form.changed_data:
            super().save_model(request, obj, form, change)
            return
        quota = obj.gpu_quota
        others = [name for name in form.changed_data if name != "gpu_quota"]
        if others:
            obj.save(update_fields=others)
        organization_quota_set(actor=request.user, organization=obj, gpu_quota=quota)  # type: ignore[arg-type]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "expires_at", "accepted_at"]
    exclude = ["token_hash"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "organization", "created_at", "last_used_at", "revoked_at"]
    exclude = ["token_hash"]


@admin.register(SshKey)
class SshKeyAdmin(admin.ModelAdmin):
    """Keys are added by their owners (the service validates them); a key deleted here leaves every
    live lease first, as ssh_key_delete does."""

    list_display = ["name", "user", "key_type", "bits", "fingerprint"]
    readonly_fields = ["user", "name", "key_type", "bits", "fingerprint", "public_key"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: SshKey) -> None:
        keys_withdraw(key_ids=[obj.pk], organization=None, actor=request.user)  # type: ignore[arg-type]
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SshKey]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        keys_withdraw(key_ids=ids, organization=None, actor=request.user)  # type: ignore[arg-type]
        super().delete_queryset(request, queryset)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "organization", "action", "object_type", "object_id"]
    list_filter = ["action"]
    search_fields = ["request_id"]
