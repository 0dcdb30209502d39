"""The cells API: the public list (JSON or GeoJSON), a public cell with its achievements,
the stats, residents' objections during a notice period, and an operator's own cells
(apply, update, achievements, evidence, renewal). Thin: validate, call one service, render."""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db.models import Count
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.adapters.photo.images import photo_size_check
from carbon.api.parsing import JSONParser, MultiPartParser, request_fields, request_files
from carbon.api.permissions import IsResident
from zerowaste.cells import serializers as s
from zerowaste.cells.errors import CellNotFound
from zerowaste.cells.geojson import FormatNegotiation, GeoJSONRenderer
from zerowaste.cells.models import Cell
from zerowaste.cells.objections import objection_file
from zerowaste.cells.operators import (
    achievements_record,
    cell_apply,
    cell_reapply,
    cell_renewal_request,
    cell_update,
    evidence_add,
    operated_cell,
)
from zerowaste.cells.stats import cells_stats


def _with_counts(cells):
    return cells.select_related("district", "community").annotate(
        objection_count=Count("objections")
    )


class CellListView(APIView):
    """Certified cells and cells in their public notice period (`in_notice` true), filtered
    by `kind`, `district` (code) and `status`. No login needed."""

    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer, GeoJSONRenderer]
    content_negotiation_class = FormatNegotiation

    @extend_schema(
        operation_id="v1_zerowaste_cells_list",
        parameters=[s.CellFilterSerializer],
        responses={
            (200, "application/json"): s.CellSummarySerializer(many=True),
            (200, "application/geo+json"): s.CellFeatureCollectionSerializer,
        },
    )
    def get(self, request):
        data = s.CellFilterSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        filters = data.validated_data
        cells = Cell.objects.public()
        if "kind" in filters:
            cells = cells.filter(kind=filters["kind"])
        if "district" in filters:
            cells = cells.filter(district__code=filters["district"])
        if "status" in filters:
            cells = cells.filter(status=filters["status"])
        cells = _with_counts(cells).order_by("district__code", "kind", "name", "id")
        return Response(s.CellSummarySerializer(cells, many=True).data)


class CellDetailView(APIView):
    """A public cell: its indicators with the assessor's scores and the monthly achievements
    (for charts), its lifecycle history and its objection count."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: s.CellDetailSerializer})
    def get(self, request, pk: int):
        cell = _with_counts(Cell.objects.public()).filter(pk=pk).first()
        if cell is None:
            raise CellNotFound()
        return Response(s.CellDetailSerializer(cell).data)


class StatsView(APIView):
    """Counts of public cells by district and by kind, and kilograms of waste avoided over
    the last twelve months."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: s.StatsSerializer})
    def get(self, request):
        return Response(s.StatsSerializer(cells_stats()).data)


class ObjectionView(APIView):
    permission_classes = [IsResident]

    @extend_schema(
        request=s.ObjectionCreateSerializer,
        responses={
            201: s.ObjectionSerializer,
            200: OpenApiResponse(s.ObjectionSerializer, description="A retry of the same key."),
            404: OpenApiResponse(description="`cell_not_found`: no public cell has this id."),
            409: OpenApiResponse(
                description="`cell_not_in_notice`, `objection_exists` (one per resident), "
                "`idempotency_conflict`, `account_closed`."
            ),
        },
    )
    def post(self, request, pk: int):
        """Object to a cell during its public notice period (公示); the public sees the count."""
        data = s.ObjectionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        objection, created = objection_file(
            user=request.user,
            cell_id=pk,
            reason=data.validated_data["reason"],
            idempotency_key=str(data.validated_data["idempotency_key"]),
        )
        return Response(
            s.ObjectionSerializer(objection).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


# --- the operator's own cells ----------------------------------------------------------


def _mine(user, pk: int) -> Cell:
    return _with_counts(Cell.objects.filter(pk=operated_cell(user=user, cell_id=pk).pk)).get()


class MyCellsView(APIView):
    permission_classes = [IsResident]

    @extend_schema(responses={200: s.MyCellSerializer(many=True)})
    def get(self, request):
        """The cells I operate, whatever their status."""
        cells = _with_counts(Cell.objects.operated_by(request.user)).order_by("-created_at")
        return Response(s.MyCellSerializer(cells, many=True).data)

    @extend_schema(
        request=s.CellApplySerializer,
        responses={
            201: s.MyCellSerializer,
            200: OpenApiResponse(s.MyCellSerializer, description="A retry of the same key."),
            409: OpenApiResponse(description="`idempotency_conflict`, `account_closed`."),
        },
    )
    def post(self, request):
        """Apply for a cell's certification; I become its operator."""
        data = s.CellApplySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        cell, created = cell_apply(
            user=request.user,
            idempotency_key=str(v["idempotency_key"]),
            kind=v["kind"],
            name=v["name"],
            name_en=v["name_en"],
            description=v["description"],
            district_code=v["district"],
            community_code=v.get("community"),
            location=Point(v["longitude"], v["latitude"], srid=4326),
            contact_name=v["contact_name"],
            contact_phone=v["contact_phone"],
            population=v["population"],
        )
        return Response(
            s.MyCellSerializer(_mine(request.user, cell.pk)).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class MyCellView(APIView):
    permission_classes = [IsResident]

    @extend_schema(responses={200: s.MyCellSerializer})
    def get(self, request, pk: int):
        return Response(s.MyCellSerializer(_mine(request.user, pk)).data)

    @extend_schema(
        request=s.CellUpdateSerializer,
        responses={
            200: s.MyCellSerializer,
            409: OpenApiResponse(description="`cell_not_updatable` (revoked or rejected)."),
        },
    )
    def patch(self, request, pk: int):
        """Update my cell's details (its status moves only by review)."""
        data = s.CellUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        lon, lat = v.pop("longitude", None), v.pop("latitude", None)
        cell_update(
            user=request.user,
            cell_id=pk,
            changes=v,
            location=Point(lon, lat, srid=4326) if lon is not None else None,
        )
        return Response(s.MyCellSerializer(_mine(request.user, pk)).data)


class MyCellAchievementsView(APIView):
    permission_classes = [IsResident]

    @extend_schema(
        request=s.AchievementsRecordSerializer,
        responses={
            200: s.MyCellSerializer,
            409: OpenApiResponse(description="`cell_not_updatable` (revoked or rejected)."),
        },
    )
    def post(self, request, pk: int):
        """Record (or correct) one month's values of my cell's indicators, all or none."""
        data = s.AchievementsRecordSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        achievements_record(
            user=request.user,
            cell_id=pk,
            month=data.validated_data["month"],
            values={v["indicator"]: v["value"] for v in data.validated_data["values"]},
        )
        return Response(s.MyCellSerializer(_mine(request.user, pk)).data)


class MyCellEvidenceView(APIView):
    permission_classes = [IsResident]
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": s.EvidenceFormSerializer},
        responses={
            201: s.EvidenceSerializer,
            200: OpenApiResponse(s.EvidenceSerializer, description="A retry of the same key."),
            409: OpenApiResponse(description="`cell_not_updatable` (revoked or rejected)."),
            503: OpenApiResponse(description="`photo_work_busy`: retry in a few seconds."),
        },
    )
    def post(self, request, pk: int):
        """An evidence photo for my cell: checked and re-encoded without metadata like every
        upload; anything that is not an image is refused and nothing is kept."""
        files = request_files(request)
        data = s.EvidenceFormSerializer(data={**request_fields(request), **files})
        data.is_valid(raise_exception=True)
        upload = files["photo"]
        if upload.size is not None:
            photo_size_check(size=upload.size)
        upload.seek(0)
        evidence, created = evidence_add(
            user=request.user,
            cell_id=pk,
            data=upload.read(settings.PHOTO_MAX_BYTES + 1),
            caption=data.validated_data["caption"],
            idempotency_key=str(data.validated_data["idempotency_key"]),
        )
        return Response(
            s.EvidenceSerializer(evidence).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


_MOVE_ANSWERS = {
    200: s.MyCellSerializer,
    409: OpenApiResponse(
        description="`cell_transition_not_allowed` (not from its status, or not yet due)."
    ),
}


class MyCellRenewalView(APIView):
    permission_classes = [IsResident]
    parser_classes = [JSONParser]

    @extend_schema(request=None, responses=_MOVE_ANSWERS)
    def post(self, request, pk: int):
        """Ask for my certified cell to be renewed (in the months before it expires)."""
        cell_renewal_request(user=request.user, cell_id=pk)
        return Response(s.MyCellSerializer(_mine(request.user, pk)).data)


class MyCellReapplyView(APIView):
    permission_classes = [IsResident]
    parser_classes = [JSONParser]

    @extend_schema(request=None, responses=_MOVE_ANSWERS)
    def post(self, request, pk: int):
        """Apply again for my expired or rejected cell."""
        cell_reapply(user=request.user, cell_id=pk)
        return Response(s.MyCellSerializer(_mine(request.user, pk)).data)
