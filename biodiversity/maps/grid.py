"""The cluster grid behind the unfiltered map at low zoom: rebuilt from public points only
(never a true point), read by summing power-of-two blocks of fine cells."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Count, F, FloatField, Func, IntegerField, Sum
from django.db.models.functions import Floor
from django.utils import timezone

from biodiversity.maps.models import MapGridCell
from biodiversity.sightings.models import Sighting

#: The finest cell: the cluster size at FINE_ZOOM (see queries.cell_degrees); a cell at zoom
#: z is 2^(FINE_ZOOM - z) fine cells on a side.
FINE_ZOOM = 16
FINE_DEGREES = 360.0 / (2**FINE_ZOOM) / 2


class _X(Func):
    function = "ST_X"
    output_field = FloatField()


class _Y(Func):
    function = "ST_Y"
    output_field = FloatField()


def map_grid_rebuild() -> int:
    """Recount every fine cell from the public points; returns the number of cells. One
    transaction: readers see the old grid or the new one, never half of each."""
    x, y = _X(F("public_location")), _Y(F("public_location"))
    cells = (
        Sighting.objects.on_map()
        .annotate(
            cx=Floor(x / FINE_DEGREES, output_field=IntegerField()),
            cy=Floor(y / FINE_DEGREES, output_field=IntegerField()),
        )
        .values("cx", "cy")
        .annotate(n=Count("id"), sx=Sum(x), sy=Sum(y))
        .order_by()
    )
    now = timezone.now()
    with transaction.atomic():
        MapGridCell.objects.all().delete()
        rows = [
            MapGridCell(
                cx=c["cx"],
                cy=c["cy"],
                sightings=c["n"],
                lon_sum=c["sx"],
                lat_sum=c["sy"],
                built_at=now,
            )
            for c in cells.iterator(chunk_size=5000)
        ]
        MapGridCell.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def map_grid_clusters(
    *, bbox: tuple[float, float, float, float], zoom: int
) -> list[dict[str, Any]]:
    """Clusters of the box at `zoom` from the grid: {"count", "lon", "lat"} (the mean of the
    public points in the cluster)."""
    west, south, east, north = bbox
    block = 2 ** (FINE_ZOOM - zoom)
    qs = (
        MapGridCell.objects.filter(
            cx__gte=int(west // FINE_DEGREES),
            cx__lte=int(east // FINE_DEGREES),
            cy__gte=int(south // FINE_DEGREES),
            cy__lte=int(north // FINE_DEGREES),
        )
        .annotate(
            bx=Floor(F("cx") * 1.0 / block, output_field=IntegerField()),
            by=Floor(F("cy") * 1.0 / block, output_field=IntegerField()),
        )
        .values("bx", "by")
        .annotate(n=Sum("sightings"), sx=Sum("lon_sum"), sy=Sum("lat_sum"))
        .order_by()
    )
    return [{"count": c["n"], "lon": c["sx"] / c["n"], "lat": c["sy"] / c["n"]} for c in qs]


def map_grid_built_at():
    cell = MapGridCell.objects.only("built_at").first()
    return cell.built_at if cell else None
