"""Shapes of the cells API: what the public sees of a cell (list, GeoJSON, detail with its
indicators, scores and monthly achievements), the stats, objections, and what an operator
sends and sees of their own cells."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date

from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from zerowaste.cells.lifecycle import renewal_window
from zerowaste.cells.models import (
    PUBLIC_STATUSES,
    Cell,
    CellKind,
    CellStatus,
    Indicator,
)
from zerowaste.cells.scores import latest_scores


def point_geometry(point) -> dict:
    return {"type": "Point", "coordinates": [round(point.x, 6), round(point.y, 6)]}


class CellPointSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["Point"])
    coordinates = serializers.ListField(
        child=serializers.FloatField(),
        min_length=2,
        max_length=2,
        help_text="[longitude, latitude]",
    )


class CellFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CellKind.choices, required=False)
    district = serializers.SlugField(max_length=64, required=False, help_text="A district code.")
    status = serializers.ChoiceField(
        choices=[(s.value, s.label) for s in PUBLIC_STATUSES], required=False
    )
    format = serializers.ChoiceField(
        choices=["json", "geojson"],
        required=False,
        help_text="`geojson` for a FeatureCollection (or send Accept: application/geo+json).",
    )


class CellSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=CellKind.choices)
    kind_label = serializers.SerializerMethodField()
    name = serializers.CharField()
    name_en = serializers.CharField()
    district = serializers.CharField(source="district.code")
    district_name = serializers.CharField(source="district.name")
    community = serializers.CharField(source="community.code", default=None)
    status = serializers.ChoiceField(choices=CellStatus.choices)
    in_notice = serializers.SerializerMethodField()
    notice_ends_at = serializers.DateTimeField(default=None)
    certified_at = serializers.DateTimeField(default=None)
    expires_at = serializers.DateTimeField(default=None)
    objections = serializers.SerializerMethodField(help_text="Objections filed in its notice.")
    location = serializers.SerializerMethodField()

    def get_kind_label(self, cell) -> str:
        return str(CellKind(cell.kind).label)

    def get_in_notice(self, cell) -> bool:
        return cell.status == CellStatus.IN_NOTICE

    def get_objections(self, cell) -> int:
        return getattr(cell, "objection_count", 0)

    @extend_schema_field(CellPointSerializer)
    def get_location(self, cell) -> dict:
        return point_geometry(cell.location)


class CellFeatureSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["Feature"])
    id = serializers.IntegerField()
    geometry = CellPointSerializer()
    properties = CellSummarySerializer()


class CellFeatureCollectionSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["FeatureCollection"])
    features = CellFeatureSerializer(many=True)


class MonthValueSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    value = serializers.DecimalField(max_digits=12, decimal_places=2)


class IndicatorSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField()
    higher_is_better = serializers.BooleanField()
    score = serializers.IntegerField(allow_null=True, help_text="The assessor's latest, of 100.")
    achievements = MonthValueSerializer(many=True)


class TransitionSerializer(serializers.Serializer):
    action = serializers.CharField()
    from_status = serializers.ChoiceField(choices=CellStatus.choices)
    to_status = serializers.ChoiceField(choices=CellStatus.choices)
    at = serializers.DateTimeField()


def indicators_of(cell: Cell) -> list[dict]:
    zh = (get_language() or "").startswith("zh")
    scores = latest_scores(cell=cell)
    series: dict[int, list[dict]] = defaultdict(list)
    for a in cell.achievements.order_by("month"):
        series[a.indicator_id].append({"month": f"{a.month:%Y-%m}", "value": a.value})
    return [
        {
            "code": i.code,
            "name": i.name_zh if zh else i.name_en,
            "unit": i.unit,
            "higher_is_better": i.higher_is_better,
            "score": scores[i.pk].score if i.pk in scores else None,
            "achievements": series.get(i.pk, []),
        }
        for i in Indicator.objects.filter(kind=cell.kind)
    ]


class CellDetailSerializer(CellSummarySerializer):
    description = serializers.CharField()
    contact_name = serializers.SerializerMethodField()
    contact_phone = serializers.SerializerMethodField()
    population = serializers.IntegerField()
    outline = serializers.SerializerMethodField()
    indicators = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()

    def _contact(self, cell, value: str) -> str:
        # A family is people, not an organisation: no contact is published.
        return "" if cell.kind == CellKind.FAMILY else value

    def get_contact_name(self, cell) -> str:
        return self._contact(cell, cell.contact_name)

    def get_contact_phone(self, cell) -> str:
        return self._contact(cell, cell.contact_phone)

    @extend_schema_field(serializers.JSONField(allow_null=True, help_text="A GeoJSON Polygon."))
    def get_outline(self, cell):
        return None if cell.outline is None else json.loads(cell.outline.geojson)

    @extend_schema_field(IndicatorSerializer(many=True))
    def get_indicators(self, cell) -> list[dict]:
        return IndicatorSerializer(indicators_of(cell), many=True).data

    @extend_schema_field(TransitionSerializer(many=True))
    def get_history(self, cell) -> list[dict]:
        rows = cell.transitions.exclude(action="request_renewal").order_by("at", "id")
        return TransitionSerializer(rows, many=True).data


class CountsSerializer(serializers.Serializer):
    certified = serializers.IntegerField()
    in_notice = serializers.IntegerField()
    kg_avoided = serializers.IntegerField(help_text="Kilograms of waste avoided, 12 months.")


class DistrictCountsSerializer(CountsSerializer):
    district = serializers.CharField()
    name = serializers.CharField()


class KindCountsSerializer(CountsSerializer):
    kind = serializers.ChoiceField(choices=CellKind.choices)
    label = serializers.CharField()


class StatsSerializer(serializers.Serializer):
    since = serializers.DateField(help_text="The first month the kg avoided count.")
    totals = CountsSerializer()
    by_district = DistrictCountsSerializer(many=True)
    by_kind = KindCountsSerializer(many=True)


class ObjectionCreateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000)
    idempotency_key = serializers.UUIDField(format="hex_verbose")


class ObjectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    cell = serializers.IntegerField(source="cell_id")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    objections = serializers.SerializerMethodField(help_text="The cell's objections so far.")

    def get_objections(self, objection) -> int:
        return objection.cell.objections.count()


# --- the operator's side ----------------------------------------------------------------


class CellApplySerializer(serializers.Serializer):
    idempotency_key = serializers.UUIDField(format="hex_verbose")
    kind = serializers.ChoiceField(choices=CellKind.choices)
    name = serializers.CharField(max_length=120)
    name_en = serializers.CharField(max_length=120, required=False, default="", allow_blank=True)
    description = serializers.CharField(
        max_length=2000, required=False, default="", allow_blank=True
    )
    district = serializers.SlugField(max_length=64)
    community = serializers.SlugField(max_length=64, required=False)
    longitude = serializers.FloatField(min_value=-180, max_value=180)
    latitude = serializers.FloatField(min_value=-90, max_value=90)
    contact_name = serializers.CharField(
        max_length=80, required=False, default="", allow_blank=True
    )
    contact_phone = serializers.RegexField(
        r"^[0-9+\- ]{0,32}$", max_length=32, required=False, default="", allow_blank=True
    )
    population = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)


class CellUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    name_en = serializers.CharField(max_length=120, required=False, allow_blank=True)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    contact_name = serializers.CharField(max_length=80, required=False, allow_blank=True)
    contact_phone = serializers.RegexField(
        r"^[0-9+\- ]{0,32}$", max_length=32, required=False, allow_blank=True
    )
    population = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    longitude = serializers.FloatField(min_value=-180, max_value=180, required=False)
    latitude = serializers.FloatField(min_value=-90, max_value=90, required=False)

    def validate(self, attrs):
        if ("longitude" in attrs) != ("latitude" in attrs):
            raise serializers.ValidationError(_("Send longitude and latitude together."))
        return attrs


class MyTransitionSerializer(TransitionSerializer):
    reason = serializers.CharField()


class MyCellSerializer(CellSummarySerializer):
    description = serializers.CharField()
    contact_name = serializers.CharField()
    contact_phone = serializers.CharField()
    population = serializers.IntegerField()
    renewal_requested_at = serializers.DateTimeField(default=None)
    renewal_due = serializers.SerializerMethodField()
    transitions = serializers.SerializerMethodField()

    def get_renewal_due(self, cell) -> bool:
        return bool(
            cell.status == CellStatus.CERTIFIED
            and cell.expires_at
            and cell.expires_at - timezone.now() <= renewal_window()
        )

    @extend_schema_field(MyTransitionSerializer(many=True))
    def get_transitions(self, cell) -> list[dict]:
        return MyTransitionSerializer(cell.transitions.order_by("at", "id"), many=True).data


class AchievementValueSerializer(serializers.Serializer):
    indicator = serializers.SlugField(max_length=40)
    value = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)


class AchievementsRecordSerializer(serializers.Serializer):
    month = serializers.RegexField(r"^(19|20)\d\d-(0[1-9]|1[0-2])$", help_text="YYYY-MM")
    values = AchievementValueSerializer(many=True, min_length=1, max_length=50)

    def validate_month(self, value: str):
        year, month = (int(p) for p in value.split("-"))
        first = date(year, month, 1)
        if first > timezone.localdate().replace(day=1):
            raise serializers.ValidationError(_("A month that has not begun has no values."))
        return first

    def validate_values(self, values):
        codes = [v["indicator"] for v in values]
        if len(set(codes)) != len(codes):
            raise serializers.ValidationError(_("Each indicator once."))
        return values


class EvidenceFormSerializer(serializers.Serializer):
    photo = serializers.FileField(help_text="JPEG, PNG, WebP or HEIC")
    caption = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    idempotency_key = serializers.UUIDField(format="hex_verbose")


class EvidenceSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    cell = serializers.IntegerField(source="cell_id")
    caption = serializers.CharField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
