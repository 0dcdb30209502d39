"""Where a sighting may be shown: GCJ-02 to WGS-84, the obscured public point (a random point
in the true point's 0.2-degree cell, with the accuracy widened to the cell), and the rule
that decides obscuring. Pure functions, no database."""

from __future__ import annotations

import math
import random

from django.contrib.gis.geos import Point

#: The side of the cell an obscured point is drawn in, in degrees (iNaturalist's).
CELL_DEGREES = 0.2
_EARTH_RADIUS_M = 6_371_008.8

# GCJ-02 is WGS-84 plus a published, deterministic offset (the Krasovsky-ellipsoid formula
# every Chinese map SDK implements). Written out here rather than taken from a package: it is
# twenty lines, and the PyPI packages for it are single-author and unmaintained.
_A = 6378245.0
_EE = 0.00669342162296594323


def _outside_china(lon: float, lat: float) -> bool:
    # The offset applies only inside China's rough bounding box; outside it GCJ-02 = WGS-84.
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _offset(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    common = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    d_lat += common
    d_lon += common
    d_lat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    d_lon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    d_lat += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2 / 3
    d_lon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    rad_lat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return d_lon, d_lat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if _outside_china(lon, lat):
        return lon, lat
    d_lon, d_lat = _offset(lon, lat)
    return lon + d_lon, lat + d_lat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """The WGS-84 point whose GCJ-02 image is (lon, lat), to well under a centimetre: the
    forward offset inverted by fixed-point iteration (it converges in a few steps)."""
    if _outside_china(lon, lat):
        return lon, lat
    w_lon, w_lat = lon, lat
    for _ in range(30):
        g_lon, g_lat = wgs84_to_gcj02(w_lon, w_lat)
        d_lon, d_lat = g_lon - lon, g_lat - lat
        w_lon, w_lat = w_lon - d_lon, w_lat - d_lat
        if abs(d_lon) < 1e-10 and abs(d_lat) < 1e-10:
            break
    return w_lon, w_lat


def cell_of(point: Point) -> tuple[float, float]:
    """The south-west corner of the 0.2-degree cell holding `point`."""
    return (
        math.floor(point.x / CELL_DEGREES) * CELL_DEGREES,
        math.floor(point.y / CELL_DEGREES) * CELL_DEGREES,
    )


def in_same_cell(a: Point, b: Point) -> bool:
    return cell_of(a) == cell_of(b)


def obscured_point(true_point: Point, *, rng: random.Random | None = None) -> Point:
    """A point drawn uniformly in the true point's cell: it says which cell, nothing more.
    Drawn from the system's random source, so it cannot be predicted from earlier draws."""
    rng = rng or random.SystemRandom()
    west, south = cell_of(true_point)
    lon = min(west + rng.random() * CELL_DEGREES, 180.0)
    lat = max(-90.0, min(south + rng.random() * CELL_DEGREES, 90.0))
    return Point(round(lon, 6), round(lat, 6), srid=4326)


def cell_accuracy_m(point: Point) -> int:
    """The cell's diagonal in metres at the point's latitude: anywhere in the cell is within
    this of the drawn point."""
    west, south = cell_of(point)
    mid_lat = math.radians(south + CELL_DEGREES / 2)
    dy = math.radians(CELL_DEGREES) * _EARTH_RADIUS_M
    dx = math.radians(CELL_DEGREES) * _EARTH_RADIUS_M * math.cos(mid_lat)
    return math.ceil(math.hypot(dx, dy))
