"""The taxon tree (kingdom to species) with its names and conservation status: the status
decides whether a sighting's public point is obscured."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Rank(models.IntegerChoices):
    """Linnaean ranks; a larger value is a lower (finer) rank, so "at species level" is
    `rank >= SPECIES`."""

    KINGDOM = 10, _("kingdom")
    PHYLUM = 20, _("phylum")
    CLASS = 30, _("class")
    ORDER = 40, _("order")
    FAMILY = 50, _("family")
    GENUS = 60, _("genus")
    SPECIES = 70, _("species")
    SUBSPECIES = 80, _("subspecies")


class ProtectionLevel(models.TextChoices):
    """China's List of Wildlife (and Wild Plants) under Special State Protection."""

    NONE = "", _("not listed")
    LEVEL_I = "I", _("national key protection, level I")
    LEVEL_II = "II", _("national key protection, level II")


class Iucn(models.TextChoices):
    NOT_EVALUATED = "", _("not evaluated")
    LC = "LC", _("least concern")
    NT = "NT", _("near threatened")
    VU = "VU", _("vulnerable")
    EN = "EN", _("endangered")
    CR = "CR", _("critically endangered")
    EW = "EW", _("extinct in the wild")
    DD = "DD", _("data deficient")


#: IUCN categories whose locations we obscure (the threatened ones, and extinct in the wild:
#: a wild record of such a species is the most sensitive of all).
THREATENED_IUCN = (Iucn.VU, Iucn.EN, Iucn.CR, Iucn.EW)


class TaxonQuerySet(models.QuerySet):
    def threatened(self) -> TaxonQuerySet:
        return self.filter(_threatened_q())

    def search(self, text: str) -> TaxonQuerySet:
        return self.filter(Q(scientific_name__icontains=text) | Q(chinese_name__icontains=text))

    def descendants_of(self, taxon: Taxon) -> TaxonQuerySet:
        """The taxon and everything below it (by the materialised path)."""
        return self.filter(path__startswith=taxon.path)


def _threatened_q() -> Q:
    return Q(protection_level__in=[ProtectionLevel.LEVEL_I, ProtectionLevel.LEVEL_II]) | Q(
        iucn__in=THREATENED_IUCN
    )


class Taxon(models.Model):
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    rank = models.PositiveSmallIntegerField(choices=Rank.choices)
    scientific_name = models.CharField(max_length=200, unique=True)
    chinese_name = models.CharField(max_length=100, blank=True)
    protection_level = models.CharField(
        max_length=2, choices=ProtectionLevel.choices, blank=True, default=""
    )
    iucn = models.CharField(max_length=2, choices=Iucn.choices, blank=True, default="")
    # "/<root id>/.../<own id>/": descendants are one indexed prefix match, and the threatened
    # check of a taxon and its ancestors one IN over the ids in it.
    path = models.CharField(max_length=255, db_index=True, editable=False, default="")

    objects = TaxonQuerySet.as_manager()

    class Meta:
        ordering = ["scientific_name"]
        verbose_name = _("taxon")
        verbose_name_plural = _("taxa")
        constraints = [
            models.CheckConstraint(condition=Q(rank__gte=10, rank__lte=80), name="taxon_rank_known")
        ]

    def __str__(self) -> str:
        return f"{self.scientific_name} {self.chinese_name}".strip()

    @property
    def is_threatened(self) -> bool:
        return bool(self.protection_level) or self.iucn in THREATENED_IUCN

    @property
    def lineage_ids(self) -> list[int]:
        """This taxon's id and its ancestors', root first."""
        return [int(part) for part in self.path.strip("/").split("/") if part]
