"""The checklist in the admin: taxa with their names and conservation status."""

from django.contrib import admin

from biodiversity.taxa.models import Taxon


@admin.register(Taxon)
class TaxonAdmin(admin.ModelAdmin):
    list_display = ["scientific_name", "chinese_name", "rank", "protection_level", "iucn"]
    list_filter = ["rank", "protection_level", "iucn"]
    search_fields = ["scientific_name", "chinese_name"]
    raw_id_fields = ["parent"]
    readonly_fields = ["path"]
