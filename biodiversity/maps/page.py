"""The public map page: server-rendered, drawing the map API's points and clusters with
Leaflet from our own static files; district outlines are the base layer unless a tile
server is configured (settings.BIODIVERSITY_MAP_TILE_URL)."""

from __future__ import annotations

import json

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_GET

from biodiversity.institutions.models import SurveyProject
from biodiversity.taxa.models import Rank, Taxon
from carbon.models import District


def _districts_geojson() -> dict:
    features = [
        {
            "type": "Feature",
            "properties": {"code": d.code, "name": d.name},
            "geometry": json.loads(d.boundary.geojson),
        }
        for d in District.objects.exclude(boundary__isnull=True)
    ]
    return {"type": "FeatureCollection", "features": features}


@require_GET
def map_page(request):
    groups = Taxon.objects.filter(rank__in=[Rank.KINGDOM, Rank.CLASS]).order_by("rank", "id")
    return render(
        request,
        "biodiversity/map.html",
        {
            "districts": _districts_geojson(),
            "groups": groups,
            "projects": SurveyProject.objects.order_by("name"),
            "tile_url": settings.BIODIVERSITY_MAP_TILE_URL,
            "tile_attribution": settings.BIODIVERSITY_MAP_TILE_ATTRIBUTION,
            "center": settings.BIODIVERSITY_MAP_CENTER,
        },
    )
