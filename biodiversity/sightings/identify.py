"""Identifications by anyone and verdicts by institution members: each recomputes the
community taxon, the public point and the grade under the sighting's row lock."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from biodiversity.institutions.services import institution_of
from biodiversity.sightings.access import sighting_visible_get
from biodiversity.sightings.grading import sighting_refresh
from biodiversity.sightings.models import Identification, Sighting, Verdict
from biodiversity.taxa.services import taxon_get
from carbon.models import User


@transaction.atomic
def identification_add(
    *, user: User, sighting_id: Any, taxon_id: Any, comment: str = ""
) -> Identification:
    """Record `user`'s identification; it replaces their earlier one on this sighting."""
    sighting = _locked(viewer=user, sighting_id=sighting_id)
    taxon = taxon_get(taxon_id=taxon_id)
    Identification.objects.filter(sighting=sighting, user=user, current=True).update(current=False)
    identification = Identification.objects.create(
        sighting=sighting, user=user, taxon=taxon, comment=comment
    )
    sighting_refresh(sighting=sighting)
    return identification


@transaction.atomic
def verdict_record(
    *,
    user: User,
    sighting_id: Any,
    outcome: str,
    new_district_record: bool = False,
    candidate_new_species: bool = False,
    note: str = "",
) -> Verdict:
    """An institution member's verdict (NotInstitutionMember for anyone else). The flags it
    raises stay on the sighting until a later verdict clears them."""
    institution = institution_of(user=user)
    sighting = _locked(viewer=user, sighting_id=sighting_id)
    verdict = Verdict.objects.create(
        sighting=sighting,
        institution=institution,
        user=user,
        outcome=outcome,
        new_district_record=new_district_record,
        candidate_new_species=candidate_new_species,
        note=note,
    )
    sighting.new_district_record = new_district_record
    sighting.candidate_new_species = candidate_new_species
    sighting_refresh(sighting=sighting)
    return verdict


def _locked(*, viewer: User, sighting_id: Any) -> Sighting:
    sighting = sighting_visible_get(viewer=viewer, sighting_id=sighting_id)
    # Lock, then read again: two identifications at once must both count.
    return Sighting.objects.select_for_update().get(pk=sighting.pk)
