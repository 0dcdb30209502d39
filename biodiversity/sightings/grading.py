"""What a sighting's identifications, verdicts and flags add up to: the community taxon
(at least two identifications, more than 2/3 of them agreeing), whether the public point is
obscured, and the quality grade. sighting_refresh writes all three after any change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from biodiversity.sightings.models import Flag, QualityGrade, Sighting, Verdict
from biodiversity.sightings.privacy import cell_accuracy_m, in_same_cell, obscured_point
from biodiversity.taxa.models import Rank, Taxon
from biodiversity.taxa.services import taxa_threatened
from carbon.models import District

#: The community taxon needs this many identifications, and strictly more than this share.
MIN_IDENTIFICATIONS = 2
AGREEMENT = 2 / 3


def community_taxon(*, taxa: Sequence[Taxon]) -> Taxon | None:
    """The finest taxon that at least two of the current identifications support (each
    supports its taxon and every ancestor) and more than 2/3 of them do."""
    total = len(taxa)
    if total < MIN_IDENTIFICATIONS:
        return None
    support = Counter(i for taxon in taxa for i in set(taxon.lineage_ids))
    agreed = [i for i, n in support.items() if n >= MIN_IDENTIFICATIONS and n / total > AGREEMENT]
    return Taxon.objects.filter(pk__in=agreed).order_by("-rank", "pk").first()


def quality_grade(*, sighting: Sighting, has_photo: bool) -> str:
    """Casual without a date, a place or a photo, or when the latest institution verdict
    does not accept it; research with a species-level community taxon and no open flag;
    needs ID otherwise."""
    latest = sighting.verdicts.order_by("-created_at", "-id").first()
    if (
        sighting.observed_at is None
        or sighting.location is None
        or not has_photo
        or (latest is not None and latest.outcome == Verdict.Outcome.NOT_ACCEPTED)
    ):
        return QualityGrade.CASUAL
    open_flag = sighting.flags.filter(status=Flag.Status.OPEN).exists()
    taxon = sighting.community_taxon
    if taxon is not None and taxon.rank >= Rank.SPECIES and not open_flag:
        return QualityGrade.RESEARCH
    return QualityGrade.NEEDS_ID


def sighting_refresh(*, sighting: Sighting) -> Sighting:
    """Recompute the community taxon, the public point and the grade, and save them. Call
    inside the transaction of the change, with the sighting row locked."""
    # One entry per current identification (two people agreeing count twice).
    ident_taxa = [
        i.taxon for i in sighting.identifications.filter(current=True).select_related("taxon")
    ]
    sighting.community_taxon = community_taxon(taxa=ident_taxa)
    considered = [*ident_taxa, *(t for t in (sighting.taxon_guess, sighting.community_taxon) if t)]
    obscure = sighting.observer_obscured or taxa_threatened(taxa=considered)
    _place(sighting, obscure=obscure)
    sighting.quality_grade = quality_grade(sighting=sighting, has_photo=sighting.photos.exists())
    sighting.save()
    return sighting


def _place(sighting: Sighting, *, obscure: bool) -> None:
    true = sighting.location
    if true is None:
        sighting.public_location = None
        sighting.public_accuracy_m = None
        sighting.obscured = obscure
        sighting.district = None
        return
    if sighting.district_id is None:
        sighting.district = District.objects.filter(boundary__contains=true).first()
    if obscure:
        # Keep an earlier draw while it lies in the true cell: a new draw on every change
        # would let anyone average the draws towards the cell's centre (harmless, but pointless).
        keep = (
            sighting.obscured
            and sighting.public_location is not None
            and in_same_cell(sighting.public_location, true)
        )
        if not keep:
            sighting.public_location = obscured_point(true)
        sighting.public_accuracy_m = max(sighting.accuracy_m or 0, cell_accuracy_m(true))
    else:
        sighting.public_location = true.clone()
        sighting.public_accuracy_m = sighting.accuracy_m
    sighting.obscured = obscure
