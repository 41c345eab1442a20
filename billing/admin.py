from django.contrib import admin

from billing.models import PriceBookEntry


@admin.register(PriceBookEntry)
class PriceBookEntryAdmin(admin.ModelAdmin):
    list_display = ["kind", "region", "price_per_gpu_hour", "currency", "effective_from"]
    list_filter = ["kind", "region"]
