"""Survey-project statistics that anyone can reconcile: each number is a count over one
queryset (`Sighting.objects.counted_for(project)`), documented with the rule it follows.

- sightings: every public sighting the project counts (area by the true point, window,
  members and volunteers for a closed survey);
- species: distinct community taxa at species rank or below among the research-grade ones
  (a sighting still waiting for an ID adds a sighting, not a species);
- observers: distinct observers of the counted sightings (erased accounts not counted).

`project_observer_counts` is the per-observer split, the source a survey leaderboard
registers: its rows add up to the project totals (less erased observers)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from biodiversity.institutions.models import SurveyProject
from biodiversity.sightings.models import QualityGrade, Sighting
from biodiversity.taxa.models import Rank

_SPECIES = Q(quality_grade=QualityGrade.RESEARCH, community_taxon__rank__gte=Rank.SPECIES)


def project_sightings(*, project: SurveyProject) -> QuerySet[Sighting]:
    return Sighting.objects.counted_for(project)


def project_statistics(*, project: SurveyProject) -> dict[str, int]:
    return project_sightings(project=project).aggregate(
        sightings=Count("id", distinct=True),
        species=Count("community_taxon", filter=_SPECIES, distinct=True),
        observers=Count("observer", distinct=True),
    )


def project_observer_counts(*, project: SurveyProject) -> QuerySet:
    """One row per observer: {"observer": user id, "species": n, "sightings": n}, most
    species first. The leaderboard engine can register this as a survey board source."""
    return (
        project_sightings(project=project)
        .filter(observer__isnull=False)
        .values("observer")
        .annotate(
            species=Count("community_taxon", filter=_SPECIES, distinct=True),
            sightings=Count("id", distinct=True),
        )
        .order_by("-species", "-sightings", "observer")
    )
