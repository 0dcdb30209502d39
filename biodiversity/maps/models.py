"""The public map's cluster grid: counts and coordinate sums of public points per fine grid
cell, rebuilt every minute (biodiversity.tasks), so an unfiltered low-zoom map sums a few
thousand cells instead of grouping a million sightings."""

from __future__ import annotations

from django.db import models


class MapGridCell(models.Model):
    # Cell indices at the finest cluster size, maps.grid.FINE_DEGREES: a coarser zoom's cell
    # is a power-of-two block of them, so merging is exact.
    cx = models.IntegerField()
    cy = models.IntegerField()
    sightings = models.PositiveIntegerField()
    lon_sum = models.FloatField()
    lat_sum = models.FloatField()
    built_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cx", "cy"], name="map_grid_cell_once")]

    def __str__(self) -> str:
        return f"cell {self.cx},{self.cy}: {self.sightings}"
