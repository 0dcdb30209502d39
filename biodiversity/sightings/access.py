"""Who sees which sighting, and where: hidden sightings only by their observer, the true
point only by the observer and by institution members of a survey that grants it (each such
access logged), the public point by everyone."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.gis.geos import Point
from django.db.models import Q

from biodiversity.institutions.services import projects_granting_true_coordinates
from biodiversity.sightings.models import Sighting, TrueLocationAccess
from carbon.models import User


def sightings_visible_to(*, viewer: User | None):
    visible = Q(hidden=False)
    if viewer is not None and viewer.is_authenticated:
        visible |= Q(observer=viewer)
    return Sighting.objects.filter(visible)


def sighting_visible_get(*, viewer: User | None, sighting_id: Any) -> Sighting:
    """A sighting the viewer may see; Sighting.DoesNotExist otherwise (a hidden one is
    answered exactly like one that never existed)."""
    try:
        pk = uuid.UUID(str(sighting_id))
    except ValueError:
        raise Sighting.DoesNotExist from None
    return (
        sightings_visible_to(viewer=viewer)
        .select_related("taxon_guess", "community_taxon", "district")
        .get(pk=pk)
    )


def true_location_for(*, viewer: User | None, sighting: Sighting) -> Point | None:
    """The true point if this viewer may see it (else None). An institution member's look
    through a survey project is logged; the observer's own is not."""
    if sighting.location is None or viewer is None or not viewer.is_authenticated:
        return None
    if sighting.observer_id == viewer.pk:
        return sighting.location
    if not sighting.obscured:
        return None  # the public point is the true one; nothing to grant
    project = (
        projects_granting_true_coordinates(user=viewer)
        .filter(
            area__contains=sighting.location,
            starts_at__lte=sighting.observed_at,
            ends_at__gt=sighting.observed_at,
        )
        .filter(Q(members_only=False) | Q(members__user_id=sighting.observer_id))
        .first()
        if sighting.observed_at
        else None
    )
    if project is None:
        return None
    TrueLocationAccess.objects.create(sighting=sighting, user=viewer, project=project)
    return sighting.location
