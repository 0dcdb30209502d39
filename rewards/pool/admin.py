"""Pools and their buyers (added here), and the sales with their certificates."""

from django.contrib import admin
from django.utils.html import format_html

from carbon.admin.base import ReadOnlyAdmin
from rewards.pool.models import EnterpriseBuyer, Pool, PoolSale


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ["name", "keeper", "price_fen_per_tonne", "is_active"]


@admin.register(EnterpriseBuyer)
class EnterpriseBuyerAdmin(admin.ModelAdmin):
    list_display = ["partner", "is_active"]


@admin.register(PoolSale)
class PoolSaleAdmin(ReadOnlyAdmin):
    list_display = [
        "pool",
        "buyer",
        "tonnes",
        "amount_fen",
        "status",
        "certificate_number",
        "created_at",
    ]
    list_filter = ["status", "pool"]
    readonly_fields = ["has_certificate"]

    @admin.display(description="certificate")
    def has_certificate(self, obj) -> str:
        return format_html("<b>{}</b>", obj.certificate_number) if obj.certificate_png else "—"
