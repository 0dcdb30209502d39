"""Admin for photos: the moderation queue of photo claims
that need a reviewer, with thumbnails, the private EXIF and GPS, the photo it may copy, and
approve / reject actions that take a reason and go through claim_review (the same rules
and ledger as everything else). Images are served to staff by an admin view, never from
public media."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.adapters.photo.models import ClaimPhoto
from carbon.admin.base import ClaimDecisionActions, ReadOnlyAdmin, receipt_html
from carbon.models import ClaimStatus

# How the new photo was turned when it matched the earlier one (images.SYMMETRIES' names).
TRANSFORMS = {
    "mirrored": gettext_lazy("mirrored"),
    "flipped": gettext_lazy("flipped upside down"),
    "rotated_90": gettext_lazy("rotated 90°"),
    "rotated_180": gettext_lazy("rotated 180°"),
    "rotated_270": gettext_lazy("rotated 270°"),
    "transposed": gettext_lazy("transposed"),
    "transversed": gettext_lazy("transversed"),
}


class ModerationQueueFilter(admin.SimpleListFilter):
    """Opens on the queue (photo claims that need review); "All photos" shows the rest."""

    title = gettext_lazy("queue")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("open", _("Needs review")), ("all", _("All photos"))]

    def value(self):
        return super().value() or "open"

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(claim__status=ClaimStatus.NEEDS_REVIEW)
        return queryset


@admin.register(ClaimPhoto)
class PhotoModerationAdmin(ClaimDecisionActions, ReadOnlyAdmin):
    list_display = [
        "thumb",
        "claim_link",
        "resident",
        "behaviour",
        "quantity",
        "taken_at",
        "status",
        "review_reason",
        "uploaded_at",
    ]
    list_display_links = ["thumb"]
    list_filter = [ModerationQueueFilter, "claim__behaviour", "original_format"]
    list_select_related = ["claim", "claim__user", "claim__behaviour"]
    search_fields = ["claim__user__email", "=claim__id", "=sha256"]
    ordering = ["claim__submitted_at"]
    list_per_page = 50
    actions = ["approve", "reject"]
    decision_noun = gettext_lazy("photo claim(s)")
    fields = [
        "preview",
        "claim_summary",
        "receipt",
        "possible_original",
        "taken_at",
        "gps_position",
        "exif",
        "original_format",
        "original_bytes",
        "width",
        "height",
        "sha256",
        "phash",
        "uploaded_at",
    ]
    readonly_fields = fields

    # Read-only rows (written by the upload service): the view permission opens the queue
    # and the images; approving or rejecting needs `carbon.review_claim` (ClaimDecisionActions).

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {"title": _("Photo moderation queue"), **(extra_context or {})}
        )

    # --- columns and detail -------------------------------------------------------------

    def _file_url(self, obj: ClaimPhoto, variant: str) -> str:
        return reverse(f"admin:carbon_claimphoto_{variant}", args=[obj.pk])

    @admin.display(description=gettext_lazy("photo"))
    def thumb(self, obj):
        return format_html(
            '<img src="{}" alt="{}" loading="lazy" style="max-height:120px">',
            self._file_url(obj, "thumbnail"),
            _("thumbnail"),
        )

    @admin.display(description=gettext_lazy("claim"), ordering="claim__submitted_at")
    def claim_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:carbon_claim_change", args=[obj.claim_id]),
            obj.claim_id,
        )

    @admin.display(description=gettext_lazy("resident"), ordering="claim__user__email")
    def resident(self, obj):
        return obj.claim.user.email

    @admin.display(description=gettext_lazy("behaviour"))
    def behaviour(self, obj):
        return obj.claim.behaviour.name

    @admin.display(description=gettext_lazy("quantity"))
    def quantity(self, obj):
        return f"{obj.claim.quantity.normalize():f} {obj.claim.behaviour.unit}"

    @admin.display(description=gettext_lazy("status"), ordering="claim__status")
    def status(self, obj):
        return obj.claim.get_status_display()

    @admin.display(description=gettext_lazy("why"))
    def review_reason(self, obj):
        return obj.claim.receipt.get("reason", "")

    @admin.display(description=gettext_lazy("image"))
    def preview(self, obj):
        return format_html(
            '<a href="{0}" target="_blank"><img src="{0}" alt="{1}" style="max-width:800px;'
            'max-height:800px"></a>',
            self._file_url(obj, "image"),
            _("photo"),
        )

    @admin.display(description=gettext_lazy("claim"))
    def claim_summary(self, obj):
        c = obj.claim
        return format_html(
            _('<a href="{}">{}</a>: {} x {} {}, occurred {}, submitted {} by {}'),
            reverse("admin:carbon_claim_change", args=[c.pk]),
            c.pk,
            c.behaviour.name,
            f"{c.quantity.normalize():f}",
            c.behaviour.unit,
            c.occurred_at,
            c.submitted_at,
            c.user.email,
        )

    @admin.display(description=gettext_lazy("receipt"))
    def receipt(self, obj):
        return receipt_html(obj.claim.receipt)

    @admin.display(description=gettext_lazy("may copy"))
    def possible_original(self, obj):
        """The earlier photo the hash search matched, side by side, for the reviewer (from
        the photo's private review facts: the resident's receipt never names it)."""
        facts = obj.review_facts or {}
        other_claim = facts.get("duplicate_of_claim")
        if not other_claim:
            return "-"
        other = ClaimPhoto.objects.filter(claim_id=other_claim).first()
        if other is None:
            return _("claim %(id)s (its photo is gone)") % {"id": other_claim}
        transform = facts.get("transform")
        turned = (
            _(" when this one is %(transform)s")
            % {"transform": TRANSFORMS.get(transform, transform.replace("_", " "))}
            if transform not in (None, "identity")
            else ""
        )
        return format_html(
            '<a href="{}"><img src="{}" alt="{}" style="max-height:240px"></a><br>'
            + _("claim {}, {} bit(s) apart{}{}, uploaded {}"),
            reverse("admin:carbon_claimphoto_change", args=[other.pk]),
            self._file_url(other, "thumbnail"),
            _("earlier photo"),
            other.claim_id,
            facts.get("distance"),
            _(" (the same file)") if facts.get("same_file") else "",
            turned,
            other.uploaded_at,
        )

    @admin.display(description=gettext_lazy("GPS (private)"))
    def gps_position(self, obj):
        if not obj.gps:
            return "-"
        return _("%(lat).6f, %(lon).6f (lat, lon)") % {"lat": obj.gps.y, "lon": obj.gps.x}

    # --- images for staff ---------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view  # staff only; others are sent to the login page
        return [
            path(
                "<int:pk>/image/",
                view(self.photo_file_view),
                {"variant": "image"},
                name="carbon_claimphoto_image",
            ),
            path(
                "<int:pk>/thumbnail/",
                view(self.photo_file_view),
                {"variant": "thumbnail"},
                name="carbon_claimphoto_thumbnail",
            ),
            *super().get_urls(),
        ]

    def photo_file_view(self, request, pk: int, variant: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        photo = get_object_or_404(ClaimPhoto, pk=pk)
        stored = getattr(photo, variant)
        try:
            handle = stored.open("rb")
        except OSError:
            raise Http404(_("The photo file is missing.")) from None
        response = FileResponse(handle, content_type="image/jpeg")
        response["Cache-Control"] = "private, max-age=600"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def claim_id_of(self, obj):
        return obj.claim_id
