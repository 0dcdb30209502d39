"""The public map and the Darwin Core export over HTTP (no login needed)."""

from __future__ import annotations

import math

from django.http import HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from biodiversity.institutions.models import SurveyProject
from biodiversity.maps.darwin_core import dwc_archive, dwc_csv_lines
from biodiversity.maps.errors import InvalidBbox
from biodiversity.maps.queries import MapFilter, map_geojson
from biodiversity.sightings.models import QualityGrade
from biodiversity.taxa.services import taxon_get


class MapQuery(serializers.Serializer):
    bbox = serializers.CharField(
        max_length=200, help_text="minlon,minlat,maxlon,maxlat (WGS-84 degrees)."
    )
    zoom = serializers.IntegerField(min_value=0, max_value=22, default=12)
    taxon = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="A taxon and its descendants."
    )
    grade = serializers.ChoiceField(choices=QualityGrade.choices, required=False)
    observed_from = serializers.DateField(required=False)
    observed_to = serializers.DateField(required=False)
    project = serializers.SlugField(required=False, max_length=64)

    def validate_project(self, slug):
        project = SurveyProject.objects.filter(slug=slug).first()
        if project is None:
            raise serializers.ValidationError(_("No survey project has this slug."))
        return project


def _bbox(raw: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(part) for part in raw.split(","))
    except ValueError:
        values = ()
    if len(values) == 4 and all(math.isfinite(v) for v in values):
        west, south, east, north = values
        if -180 <= west < east <= 180 and -90 <= south < north <= 90:
            return west, south, east, north
    raise InvalidBbox(details={"bbox": raw[:200]})


class _GeoJSON(serializers.Serializer):
    type = serializers.ChoiceField(choices=["FeatureCollection"])
    features = serializers.ListField(child=serializers.DictField())
    zoom = serializers.IntegerField()
    clustered = serializers.BooleanField()
    truncated = serializers.BooleanField(required=False)
    as_of = serializers.DateTimeField(required=False, allow_null=True)


class MapView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(parameters=[MapQuery], responses={200: _GeoJSON})
    def get(self, request):
        """Public sightings in a box as a GeoJSON FeatureCollection, by their public point
        (obscured ones at their generalised point). Below zoom 13, grid clusters
        (`kind: cluster`, `count`) instead of points (`kind: sighting`)."""
        query = MapQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        v = query.validated_data
        taxon = taxon_get(taxon_id=v["taxon"]) if "taxon" in v else None
        result = map_geojson(
            f=MapFilter(
                bbox=_bbox(v["bbox"]),
                zoom=v["zoom"],
                taxon=taxon,
                grade=v.get("grade"),
                observed_from=v.get("observed_from"),
                observed_to=v.get("observed_to"),
                project=v.get("project"),
            )
        )
        return Response(result)


class _FileView(APIView):
    permission_classes = [AllowAny]

    def perform_content_negotiation(self, request, force=False):
        # A download: whatever the Accept header says, errors still render as JSON.
        return super().perform_content_negotiation(request, force=True)


class DarwinCoreCsvView(_FileView):
    @extend_schema(
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV")}
    )
    def get(self, request):
        """Research-grade sightings as Darwin Core occurrences (CSV, UTF-8, header row)."""
        response = StreamingHttpResponse(dwc_csv_lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="occurrences.csv"'
        return response


class DarwinCoreArchiveView(_FileView):
    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="occurrence.txt, meta.xml, eml.xml"
            )
        }
    )
    def get(self, request):
        """The same occurrences as a Darwin Core Archive (zip with meta.xml and eml.xml)."""
        response = HttpResponse(dwc_archive(), content_type="application/zip")
        response["Content-Disposition"] = 'attachment; filename="dwc-a.zip"'
        return response
