"""The Django admin of clusters: leases and allocations are read-only (booking and the lifecycle
write them); a node is drained and undrained by the health services, as on the staff pages."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from clusters.models import GPU, Allocation, Cluster, Lease, Node, PriceBookEntry, Region
from clusters.services.health import node_drain, node_undrain
from core.admin import ReadOnlyAdmin, ReadOnlyInline
from core.refusals import Refused

ADMIN_REASON = "From the Django admin by {email}"


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "us_state"]


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ["name", "region"]
    list_filter = ["region"]


class GpuInline(admin.TabularInline):
    model = GPU
    extra = 0


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["hostname", "cluster", "pool", "state", "state_reason", "state_changed_at"]
    list_filter = ["pool", "state", "cluster__region"]
    search_fields = ["hostname"]
    exclude = ["agent_token_encrypted"]
    # The state moves only through the services (drain, undrain, health rules): the actions below.
    readonly_fields = ["state", "state_reason", "state_changed_at", "undrained_at", "unreachable_sweeps"]
    inlines = [GpuInline]
    actions = ["drain", "undrain"]

    @admin.action(description="Drain the selected nodes (no new placements; leases continue)")
    def drain(self, request: HttpRequest, queryset: QuerySet[Node]) -> None:
        self._each(request, queryset, node_drain, "drained")

    @admin.action(description="Undrain the selected nodes (back into placement)")
    def undrain(self, request: HttpRequest, queryset: QuerySet[Node]) -> None:
        self._each(request, queryset, node_undrain, "undrained")

    def _each(
        self, request: HttpRequest, queryset: QuerySet[Node], service: Callable[..., Node], done: str
    ) -> None:
        reason = ADMIN_REASON.format(email=request.user.email)  # type: ignore[union-attr]
        changed = 0
        for node in queryset.order_by("hostname"):
            try:
                service(node=node, actor=request.user, reason=reason)
                changed += 1
            except Refused as refusal:
                self.message_user(request, refusal.detail, level=messages.WARNING)
        self.message_user(request, f"{changed} node(s) {done}.", level=messages.SUCCESS)


@admin.register(GPU)
class GpuAdmin(admin.ModelAdmin):
    list_display = ["__str__", "uuid", "health"]
    list_filter = ["health"]
    search_fields = ["uuid", "node__hostname"]
    raw_id_fields = ["node"]


class AllocationInline(ReadOnlyInline):
    model = Allocation


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "organization", "region", "gpus", "kind", "state", "start", "end"]
    list_filter = ["state", "kind", "region"]
    inlines = [AllocationInline]


@admin.register(PriceBookEntry)
class PriceBookEntryAdmin(admin.ModelAdmin):
    list_display = ["kind", "region", "price_per_gpu_hour", "currency", "effective_from"]
    list_filter = ["kind", "region"]
