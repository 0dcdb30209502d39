"""The cells list as GeoJSON (RFC 7946) for maps: `?format=geojson` or
`Accept: application/geo+json`. Each listed cell becomes a Feature whose geometry is its
`location`; an error answer stays the JSON error envelope."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer


def feature_collection(cells: list[dict[str, Any]]) -> dict[str, Any]:
    features = []
    for cell in cells:
        properties = dict(cell)
        geometry = properties.pop("location")
        features.append(
            {"type": "Feature", "id": cell["id"], "geometry": geometry, "properties": properties}
        )
    return {"type": "FeatureCollection", "features": features}


class GeoJSONRenderer(JSONRenderer):
    media_type = "application/geo+json"
    format = "geojson"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code >= 400:
            response["Content-Type"] = "application/json"
        elif isinstance(data, list):
            data = feature_collection(data)
        return super().render(data, accepted_media_type, renderer_context)


class FormatNegotiation(DefaultContentNegotiation):
    """An unknown `?format=` is a bad parameter (400), not DRF's "not found"."""

    def filter_renderers(self, renderers, format):
        matching = [r for r in renderers if r.format == format]
        if not matching:
            raise ValidationError({"format": [_("Use json or geojson.")]})
        return matching
