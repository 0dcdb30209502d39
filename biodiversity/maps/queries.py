"""The public map's queries: sightings in a bounding box by their public point (never the
true one), filtered by taxon and descendants, grade, date and survey project, as GeoJSON
points, or as grid clusters with counts at low zoom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.gis.geos import Polygon
from django.db.models import Avg, Count, F, FloatField, Func, IntegerField, Q, QuerySet
from django.db.models.functions import Floor
from django.utils import timezone

from biodiversity.institutions.models import SurveyProject
from biodiversity.maps.grid import map_grid_built_at, map_grid_clusters
from biodiversity.sightings.models import Sighting
from biodiversity.taxa.models import Taxon

#: Below this zoom the map answers clusters; from it on, points. (At 14 a phone screen shows
#: a few square kilometres: a city's densest parts hold a few thousand sightings there.)
POINTS_FROM_ZOOM = 14
#: The most points one answer holds: more than a phone screen can show apart; past it the
#: answer says `truncated` and the client zooms in.
MAX_POINTS = 1000
# A cluster cell is about 128 screen pixels: a tile (256 px) is 360 / 2^zoom degrees wide.
_CELLS_PER_TILE = 2


@dataclass(frozen=True)
class MapFilter:
    bbox: tuple[float, float, float, float]
    zoom: int
    taxon: Taxon | None = None
    grade: str | None = None
    observed_from: date | None = None
    observed_to: date | None = None
    project: SurveyProject | None = None


class _X(Func):
    function = "ST_X"
    output_field = FloatField()


class _Y(Func):
    function = "ST_Y"
    output_field = FloatField()


def map_sightings(*, f: MapFilter) -> QuerySet[Sighting]:
    """Public sightings whose public point lies in the box, filtered."""
    box = Polygon.from_bbox(f.bbox)
    box.srid = 4326
    qs = Sighting.objects.on_map().filter(public_location__contained=box)
    if f.taxon is not None:
        qs = qs.filter(
            Q(community_taxon__path__startswith=f.taxon.path)
            | Q(community_taxon__isnull=True, taxon_guess__path__startswith=f.taxon.path)
        )
    if f.grade:
        qs = qs.filter(quality_grade=f.grade)
    tz = timezone.get_current_timezone()
    if f.observed_from:
        qs = qs.filter(observed_at__gte=datetime.combine(f.observed_from, time.min, tz))
    if f.observed_to:
        end = datetime.combine(f.observed_to + timedelta(days=1), time.min, tz)
        qs = qs.filter(observed_at__lt=end)
    if f.project is not None:
        qs = _in_project_publicly(qs, f.project)
    return qs


def _in_project_publicly(qs: QuerySet[Sighting], project: SurveyProject) -> QuerySet[Sighting]:
    """The project's sightings as the public may place them: by the public point. (The
    project's own count goes by the true point; filtering the public map by it would tell
    that an obscured sighting's true point lies inside the project's area.)"""
    qs = qs.filter(
        public_location__within=project.area,
        observed_at__gte=project.starts_at,
        observed_at__lt=project.ends_at,
    )
    if project.members_only:
        qs = qs.filter(observer__survey_memberships__project=project)
    return qs


def cell_degrees(zoom: int) -> float:
    return 360.0 / (2**zoom) / _CELLS_PER_TILE


def _unfiltered(f: MapFilter) -> bool:
    return not (f.taxon or f.grade or f.observed_from or f.observed_to or f.project)


def map_geojson(*, f: MapFilter) -> dict[str, Any]:
    if f.zoom < POINTS_FROM_ZOOM and _unfiltered(f):
        # The landing view (no filter, low zoom): from the grid rebuilt every minute.
        clusters = map_grid_clusters(bbox=f.bbox, zoom=f.zoom)
        return _cluster_collection(clusters, f.zoom, as_of=map_grid_built_at())
    qs = map_sightings(f=f)
    if f.zoom < POINTS_FROM_ZOOM:
        return _clusters(qs, cell_degrees(f.zoom), f.zoom)
    # Coordinates as two floats straight from SQL (no geometry objects to build), and no
    # ordering: a box with more than MAX_POINTS answers an arbitrary MAX_POINTS of them and
    # says `truncated` (sorting every sighting in a dense box would cost more than the rest).
    rows = list(
        qs.order_by()
        .annotate(lon=_X(F("public_location")), lat=_Y(F("public_location")))
        .values(
            "id",
            "lon",
            "lat",
            "public_accuracy_m",
            "obscured",
            "quality_grade",
            "observed_at",
            "community_taxon__scientific_name",
            "community_taxon__chinese_name",
            "taxon_guess__scientific_name",
            "taxon_guess__chinese_name",
        )[: MAX_POINTS + 1]
    )
    features = [
        {
            "type": "Feature",
            "id": str(r["id"]),
            "geometry": {
                "type": "Point",
                "coordinates": [r["lon"], r["lat"]],
            },
            "properties": {
                "kind": "sighting",
                "id": str(r["id"]),
                "scientific_name": r["community_taxon__scientific_name"]
                or r["taxon_guess__scientific_name"],
                "chinese_name": r["community_taxon__chinese_name"]
                or r["taxon_guess__chinese_name"],
                "quality_grade": r["quality_grade"],
                "obscured": r["obscured"],
                "accuracy_m": r["public_accuracy_m"],
                "observed_at": r["observed_at"].isoformat() if r["observed_at"] else None,
            },
        }
        for r in rows[:MAX_POINTS]
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "zoom": f.zoom,
        "clustered": False,
        "truncated": len(rows) > MAX_POINTS,
    }


def _clusters(qs: QuerySet[Sighting], size: float, zoom: int) -> dict[str, Any]:
    """One feature per grid cell holding sightings, at the mean of their public points."""
    x, y = _X(F("public_location")), _Y(F("public_location"))
    cells = (
        qs.annotate(
            cx=Floor(x / size, output_field=IntegerField()),
            cy=Floor(y / size, output_field=IntegerField()),
        )
        .values("cx", "cy")
        .annotate(n=Count("id"), lon=Avg(x), lat=Avg(y))
        .order_by()
    )
    return _cluster_collection(
        [{"count": c["n"], "lon": c["lon"], "lat": c["lat"]} for c in cells], zoom, as_of=None
    )


def _cluster_collection(clusters, zoom: int, *, as_of) -> dict[str, Any]:
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(c["lon"], 5), round(c["lat"], 5)]},
            "properties": {"kind": "cluster", "count": c["count"]},
        }
        for c in clusters
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "zoom": zoom,
        "clustered": True,
        # Unfiltered clusters come from the grid rebuilt every minute: as of when.
        "as_of": as_of.isoformat() if as_of else None,
    }
