from django.contrib import admin

from clusters.models import GPU, Allocation, Cluster, Lease, Node, PriceBookEntry, Region


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "us_state", "ssh_gateway_host", "ssh_gateway_port"]


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ["name", "region"]
    list_filter = ["region"]


class GpuInline(admin.TabularInline):
    model = GPU
    extra = 0


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["hostname", "cluster", "pool", "state", "public_address", "state_changed_at"]
    list_filter = ["pool", "state", "cluster__region"]
    search_fields = ["hostname", "public_address", "private_address"]
    exclude = ["agent_token_encrypted"]
    inlines = [GpuInline]


@admin.register(GPU)
class GpuAdmin(admin.ModelAdmin):
    list_display = ["__str__", "uuid", "health"]
    list_filter = ["health"]
    search_fields = ["uuid", "node__hostname"]
    raw_id_fields = ["node"]


class AllocationInline(admin.TabularInline):
    model = Allocation
    extra = 0
    raw_id_fields = ["gpu", "node"]


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ["public_id", "organization", "region", "gpus", "kind", "state", "start", "end"]
    list_filter = ["state", "kind", "region"]
    raw_id_fields = ["organization", "booked_by"]
    inlines = [AllocationInline]


@admin.register(PriceBookEntry)
class PriceBookEntryAdmin(admin.ModelAdmin):
    list_display = ["kind", "region", "price_per_gpu_hour", "currency", "effective_from"]
    list_filter = ["kind", "region"]
