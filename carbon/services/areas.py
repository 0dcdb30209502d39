"""Districts and communities from GeoJSON (WGS-84): created or updated by code, never deleted
(residents and factors refer to them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.db import transaction

from carbon.models import Community, District


class AreaDataError(ValueError):
    """The file is not a usable FeatureCollection of areas; nothing was loaded."""


def _multipolygon(geometry: dict) -> MultiPolygon:
    geom = GEOSGeometry(json.dumps(geometry), srid=4326)
    if geom.geom_type == "Polygon":
        geom = MultiPolygon(geom, srid=4326)
    if geom.geom_type != "MultiPolygon":
        raise AreaDataError(f"expected a Polygon or MultiPolygon, got {geom.geom_type}")
    return geom


@transaction.atomic
def areas_load(*, path: Path | str, kind: Literal["district", "community"]) -> int:
    """Load every feature of the file; each needs properties `code` and `name`, communities
    also `district` (a district code). Returns the number of features loaded."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise AreaDataError("expected a GeoJSON FeatureCollection")
    for i, feature in enumerate(features):
        props = feature.get("properties") or {}
        code, name = props.get("code"), props.get("name")
        if not code or not name:
            raise AreaDataError(f"feature {i}: properties `code` and `name` are required")
        boundary = _multipolygon(feature["geometry"]) if feature.get("geometry") else None
        if kind == "district":
            District.objects.update_or_create(
                code=code, defaults={"name": name, "boundary": boundary}
            )
        else:
            district = District.objects.filter(code=props.get("district")).first()
            if district is None:
                raise AreaDataError(f"feature {i}: unknown district {props.get('district')!r}")
            Community.objects.update_or_create(
                code=code, defaults={"name": name, "district": district, "boundary": boundary}
            )
    return len(features)
