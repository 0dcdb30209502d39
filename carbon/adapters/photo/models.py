"""Photo evidence: the re-encoded image (no metadata), its private EXIF facts, its hash."""

from __future__ import annotations

from django.contrib.gis.db import models as gis
from django.db import models
from django.utils.translation import gettext_lazy as _

from carbon.models.claims import Claim


def _photo_path(instance, filename: str) -> str:
    return f"claims/{instance.claim_id}/{filename}"


class ClaimPhoto(models.Model):
    claim = models.OneToOneField(
        Claim, on_delete=models.CASCADE, related_name="photo", verbose_name=_("claim")
    )
    image = models.ImageField(
        _("image"), upload_to=_photo_path, width_field="width", height_field="height"
    )
    thumbnail = models.ImageField(_("thumbnail"), upload_to=_photo_path)
    width = models.PositiveIntegerField(_("width"), default=0)
    height = models.PositiveIntegerField(_("height"), default=0)
    original_format = models.CharField(_("original format"), max_length=16)
    original_bytes = models.PositiveIntegerField(_("original size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    # 64-bit perceptual hash, hex; bands index it for near-duplicate search.
    phash = models.CharField(_("perceptual hash"), max_length=16)
    taken_at = models.DateTimeField(_("taken at"), null=True, blank=True)
    # Private: for reviewers only, never served publicly.
    gps = gis.PointField(_("GPS (private)"), srid=4326, null=True, blank=True)
    exif = models.JSONField(_("EXIF"), default=dict, blank=True)
    # Private, for reviewers only: the earlier photo the duplicate search matched (its
    # claim, the distance, whether the file is the same, which symmetry matched). The
    # resident's receipt says only "duplicate": the other claim is someone else's.
    review_facts = models.JSONField(_("review facts"), default=dict, blank=True)
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("claim photo")
        verbose_name_plural = _("claim photos")

    def __str__(self) -> str:
        return f"photo for claim {self.claim_id}"


class PhotoHashBand(models.Model):
    """One band of a photo's perceptual hash. A hash within the duplicate distance of
    another is within a few bits of it in at least one band (pigeonhole), so candidates
    come from index probes (carbon.adapters.photo.duplicates)."""

    photo = models.ForeignKey(
        ClaimPhoto, on_delete=models.CASCADE, related_name="bands", verbose_name=_("photo")
    )
    band = models.PositiveSmallIntegerField(_("band"))
    value = models.PositiveIntegerField(_("value"))
    # The photo's whole hash (as a signed 64-bit integer), so the index alone answers the
    # distance of a candidate: no photo row is read for the many that are not near.
    phash = models.BigIntegerField(_("perceptual hash"))

    class Meta:
        verbose_name = _("photo hash band")
        verbose_name_plural = _("photo hash bands")
        indexes = [
            # Covering on PostgreSQL (INCLUDE is ignored elsewhere): an index-only scan.
            models.Index(
                fields=["band", "value"], include=["phash", "photo"], name="photo_band_idx"
            )
        ]

    def __str__(self) -> str:
        return f"band {self.band}={self.value} of photo {self.photo_id}"
