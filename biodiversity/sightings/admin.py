"""Sightings in the admin: the list with photos, identifications and verdicts, institution
verdicts (named permission `biodiversity.record_verdict`, and the deciding staff member
must belong to an institution), and the flag queue (`biodiversity.moderate_flag`)."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from biodiversity.sightings.flags import flag_resolve
from biodiversity.sightings.identify import verdict_record
from biodiversity.sightings.models import Flag, Identification, Sighting, SightingPhoto, Verdict
from carbon.admin.base import ReadOnlyAdmin, act_with_reason


class IdentificationInline(admin.TabularInline):
    model = Identification
    fields = ["taxon", "user", "current", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class VerdictInline(IdentificationInline):
    model = Verdict
    fields = ["institution", "user", "outcome", "new_district_record", "candidate_new_species"]
    readonly_fields = fields


@admin.register(Sighting)
class SightingAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "observer",
        "display_taxon",
        "quality_grade",
        "obscured",
        "hidden",
        "observed_at",
        "created_at",
    ]
    list_filter = ["quality_grade", "obscured", "hidden", "new_district_record"]
    search_fields = ["taxon_guess__scientific_name", "community_taxon__chinese_name"]
    list_select_related = ["observer", "community_taxon", "taxon_guess"]
    readonly_fields = ["photo_thumbnails"]
    exclude = ["request_hash"]
    inlines = [IdentificationInline, VerdictInline]
    actions = ["verdict_accepted", "verdict_plausible", "verdict_not_accepted"]

    @admin.display(description=gettext_lazy("taxon"))
    def display_taxon(self, obj):
        return obj.community_taxon or obj.taxon_guess

    @admin.display(description=gettext_lazy("photos"))
    def photo_thumbnails(self, obj):
        url = reverse("admin:biodiversity_sighting_photo", args=[obj.pk])
        return format_html_join(
            " ",
            '<a href="{}?position={}"><img src="{}?position={}&amp;variant=thumbnail" alt="" '
            'style="max-height:120px"></a>',
            ((url, p.position, url, p.position) for p in obj.photos.all()),
        ) or format_html("{}", "-")

    def get_urls(self):
        return [
            path(
                "<uuid:pk>/photo/",
                self.admin_site.admin_view(self.photo_file),
                name="biodiversity_sighting_photo",
            ),
            *super().get_urls(),
        ]

    def photo_file(self, request, pk):
        """Staff see a sighting's photos (hidden ones included) with the view permission:
        `?position=` (default 1), `&variant=thumbnail` for the small one."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        variant = "thumbnail" if request.GET.get("variant") == "thumbnail" else "image"
        position = request.GET.get("position", "1")
        photo = SightingPhoto.objects.filter(
            sighting_id=pk, position=int(position) if position.isdigit() else 0
        ).first()
        if photo is None:
            raise Http404
        return FileResponse(getattr(photo, variant).open("rb"), content_type="image/jpeg")

    def has_record_verdict_permission(self, request):
        return request.user.has_perm("biodiversity.record_verdict")

    def _verdict(self, request, queryset, outcome, title):
        def act(row, note):
            verdict_record(user=request.user, sighting_id=row.pk, outcome=outcome, note=note)

        return act_with_reason(
            self,
            request,
            list(queryset),
            permission="record_verdict",
            title=title,
            max_length=500,
            label=str,
            act=act,
            summary=lambda n: _("%(count)d verdict(s) recorded.") % {"count": n},
        )

    @admin.action(permissions=["record_verdict"], description=gettext_lazy("Verdict: accepted"))
    def verdict_accepted(self, request, queryset):
        return self._verdict(request, queryset, Verdict.Outcome.ACCEPTED, _("Verdict: accepted"))

    @admin.action(permissions=["record_verdict"], description=gettext_lazy("Verdict: plausible"))
    def verdict_plausible(self, request, queryset):
        return self._verdict(request, queryset, Verdict.Outcome.PLAUSIBLE, _("Verdict: plausible"))

    @admin.action(permissions=["record_verdict"], description=gettext_lazy("Verdict: not accepted"))
    def verdict_not_accepted(self, request, queryset):
        return self._verdict(
            request, queryset, Verdict.Outcome.NOT_ACCEPTED, _("Verdict: not accepted")
        )


@admin.register(Flag)
class FlagAdmin(ReadOnlyAdmin):
    """The moderation queue: open flags first."""

    list_display = ["sighting", "reason", "status", "user", "created_at", "resolved_at"]
    list_filter = ["status", "reason"]
    ordering = ["-status", "created_at"]
    actions = ["uphold", "dismiss"]

    def has_moderate_flag_permission(self, request):
        return request.user.has_perm("biodiversity.moderate_flag")

    def _resolve(self, request, queryset, uphold: bool):
        if not self.has_moderate_flag_permission(request):
            raise PermissionDenied
        for flag in queryset:
            flag_resolve(flag_id=flag.pk, moderator=request.user, uphold=uphold)
        self.message_user(request, _("%(count)d flag(s) resolved.") % {"count": len(queryset)})

    @admin.action(permissions=["moderate_flag"], description=gettext_lazy("Uphold (hide)"))
    def uphold(self, request, queryset):
        self._resolve(request, queryset, True)

    @admin.action(permissions=["moderate_flag"], description=gettext_lazy("Dismiss"))
    def dismiss(self, request, queryset):
        self._resolve(request, queryset, False)
