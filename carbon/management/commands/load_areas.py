"""Load districts or communities from a GeoJSON FeatureCollection (WGS-84)."""

import json

from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from carbon.models import Community, District


def _multipolygon(geometry: dict) -> MultiPolygon:
    geom = GEOSGeometry(json.dumps(geometry), srid=4326)
    if geom.geom_type == "Polygon":
        geom = MultiPolygon(geom, srid=4326)
    if geom.geom_type != "MultiPolygon":
        raise CommandError(f"expected a Polygon or MultiPolygon, got {geom.geom_type}")
    return geom


class Command(BaseCommand):
    help = (
        "Load districts or communities from GeoJSON. Each feature needs properties `code` and "
        "`name`; communities also `district` (a district code). Existing codes are updated."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--kind", choices=["district", "community"], required=True)

    @transaction.atomic
    def handle(self, *args, path, kind, **options):
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        features = data.get("features") if isinstance(data, dict) else None
        if not isinstance(features, list):
            raise CommandError("expected a GeoJSON FeatureCollection")
        count = 0
        for i, feature in enumerate(features):
            props = feature.get("properties") or {}
            code, name = props.get("code"), props.get("name")
            if not code or not name:
                raise CommandError(f"feature {i}: properties `code` and `name` are required")
            boundary = _multipolygon(feature["geometry"]) if feature.get("geometry") else None
            if kind == "district":
                District.objects.update_or_create(
                    code=code, defaults={"name": name, "boundary": boundary}
                )
            else:
                district = District.objects.filter(code=props.get("district")).first()
                if district is None:
                    raise CommandError(f"feature {i}: unknown district {props.get('district')!r}")
                Community.objects.update_or_create(
                    code=code, defaults={"name": name, "district": district, "boundary": boundary}
                )
            count += 1
        self.stdout.write(self.style.SUCCESS(f"{count} {kind} feature(s) loaded"))
