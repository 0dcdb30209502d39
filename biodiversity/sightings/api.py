"""Sightings over HTTP: record one (multipart, 1 to 5 photos), read one (the public point
for everyone, the true point for those allowed), identify, verdict, flag, and the photos
(re-encoded, without metadata)."""

from __future__ import annotations

import logging
import math

from django.http import FileResponse
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from biodiversity.sightings.access import sighting_visible_get, true_location_for
from biodiversity.sightings.flags import flag_raise
from biodiversity.sightings.identify import identification_add, verdict_record
from biodiversity.sightings.models import Flag, QualityGrade, Sighting, SightingPhoto, Verdict
from biodiversity.sightings.submit import MAX_PHOTOS, SightingDraft, sighting_submit
from biodiversity.taxa.api import TaxonSerializer
from carbon.api.pagination import NewestFirst
from carbon.api.parsing import JSONParser, MultiPartParser

log = logging.getLogger(__name__)


# --- answers --------------------------------------------------------------------------------


class PointSerializer(serializers.Serializer):
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    accuracy_m = serializers.IntegerField(allow_null=True)


class TrueLocationSerializer(PointSerializer):
    place_name = serializers.CharField()


class PhotoSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    url = serializers.CharField()
    thumbnail_url = serializers.CharField()
    duplicate = serializers.BooleanField()


class IdentificationOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    taxon = TaxonSerializer()
    current = serializers.BooleanField()
    by_observer = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class VerdictOutSerializer(serializers.Serializer):
    institution = serializers.CharField()
    outcome = serializers.ChoiceField(choices=Verdict.Outcome.choices)
    new_district_record = serializers.BooleanField()
    candidate_new_species = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class SightingSerializer(serializers.Serializer):
    """A sighting as the viewer may see it. `location` is the public point (obscured ones: a
    random point in a 0.2-degree cell, accuracy widened); `true_location` is null unless the
    viewer is the observer or an institution member a survey grants it to. Place name, notes
    and district are withheld from everyone else while the sighting is obscured."""

    id = serializers.UUIDField()
    taxon = serializers.SerializerMethodField()
    taxon_guess = TaxonSerializer(allow_null=True)
    community_taxon = TaxonSerializer(allow_null=True)
    quality_grade = serializers.ChoiceField(choices=QualityGrade.choices)
    observed_at = serializers.DateTimeField(allow_null=True)
    count = serializers.IntegerField()
    location = serializers.SerializerMethodField()
    obscured = serializers.BooleanField()
    true_location = serializers.SerializerMethodField()
    place_name = serializers.SerializerMethodField()
    notes = serializers.SerializerMethodField()
    district = serializers.SerializerMethodField()
    photos = serializers.SerializerMethodField()
    identifications = serializers.SerializerMethodField()
    verdicts = serializers.SerializerMethodField()
    new_district_record = serializers.BooleanField()
    candidate_new_species = serializers.BooleanField()
    mine = serializers.SerializerMethodField()
    client_uuid = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def _true(self, sighting):
        return self.context.get("true_locations", {}).get(sighting.pk)

    def _shows_private(self, sighting) -> bool:
        return not sighting.obscured or self._true(sighting) is not None

    @extend_schema_field(TaxonSerializer(allow_null=True))
    def get_taxon(self, sighting):
        taxon = sighting.community_taxon or sighting.taxon_guess
        return TaxonSerializer(taxon).data if taxon else None

    @extend_schema_field(PointSerializer(allow_null=True))
    def get_location(self, sighting):
        point = sighting.public_location
        if point is None:
            return None
        return {
            "latitude": point.y,
            "longitude": point.x,
            "accuracy_m": sighting.public_accuracy_m,
        }

    @extend_schema_field(TrueLocationSerializer(allow_null=True))
    def get_true_location(self, sighting):
        point = self._true(sighting)
        if point is None:
            return None
        return {
            "latitude": point.y,
            "longitude": point.x,
            "accuracy_m": sighting.accuracy_m,
            "place_name": sighting.place_name,
        }

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_place_name(self, sighting):
        return sighting.place_name if self._shows_private(sighting) else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_notes(self, sighting):
        # Notes are free text too ("by the second pavilion"): withheld with the place.
        return sighting.notes if self._shows_private(sighting) else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_district(self, sighting):
        if sighting.district is None or not self._shows_private(sighting):
            return None
        return sighting.district.code

    @extend_schema_field(PhotoSerializer(many=True))
    def get_photos(self, sighting):
        base = f"/api/v1/biodiversity/sightings/{sighting.pk}/photos"
        return [
            {
                "position": p.position,
                "width": p.width,
                "height": p.height,
                "url": f"{base}/{p.position}",
                "thumbnail_url": f"{base}/{p.position}/thumbnail",
                "duplicate": p.duplicate_of_id is not None,
            }
            for p in sighting.photos.all()
        ]

    @extend_schema_field(IdentificationOutSerializer(many=True))
    def get_identifications(self, sighting):
        return [
            {
                "id": i.pk,
                "taxon": TaxonSerializer(i.taxon).data,
                "current": i.current,
                "by_observer": i.user_id is not None and i.user_id == sighting.observer_id,
                "created_at": i.created_at,
            }
            for i in sighting.identifications.select_related("taxon")
        ]

    @extend_schema_field(VerdictOutSerializer(many=True))
    def get_verdicts(self, sighting):
        return [
            VerdictOutSerializer(
                {
                    "institution": str(v.institution),
                    "outcome": v.outcome,
                    "new_district_record": v.new_district_record,
                    "candidate_new_species": v.candidate_new_species,
                    "created_at": v.created_at,
                }
            ).data
            for v in sighting.verdicts.select_related("institution")
        ]

    @extend_schema_field(serializers.BooleanField())
    def get_mine(self, sighting):
        viewer = self.context.get("viewer")
        return bool(viewer and viewer.is_authenticated and sighting.observer_id == viewer.pk)

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_client_uuid(self, sighting):
        return (
            str(sighting.client_uuid) if self.get_mine(sighting) and sighting.client_uuid else None
        )


def render_sighting(sighting: Sighting, viewer) -> dict:
    true = true_location_for(viewer=viewer, sighting=sighting)
    context = {"viewer": viewer, "true_locations": {sighting.pk: true} if true else {}}
    return SightingSerializer(sighting, context=context).data


# --- requests -------------------------------------------------------------------------------


class SightingCreateSerializer(serializers.Serializer):
    taxon = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1
    )
    latitude = serializers.FloatField(required=False, allow_null=True, min_value=-90, max_value=90)
    longitude = serializers.FloatField(
        required=False, allow_null=True, min_value=-180, max_value=180
    )
    coordinate_system = serializers.ChoiceField(choices=["wgs84", "gcj02"], default="wgs84")
    accuracy_m = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=1_000_000
    )
    observed_at = serializers.DateTimeField(required=False, allow_null=True)
    count = serializers.IntegerField(default=1, min_value=1, max_value=100_000)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    place_name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    obscure = serializers.BooleanField(default=False)
    client_uuid = serializers.UUIDField(required=False, allow_null=True)

    def validate_latitude(self, value):
        return _finite(value)

    def validate_longitude(self, value):
        return _finite(value)

    def validate(self, attrs):
        if (attrs.get("latitude") is None) != (attrs.get("longitude") is None):
            raise serializers.ValidationError(
                {"latitude": [_msg_both()], "longitude": [_msg_both()]}
            )
        return attrs


class SightingCreateFormSerializer(SightingCreateSerializer):
    """The multipart form, as documented: the fields above and 1 to 5 files named `photos`."""

    photos = serializers.ListField(
        child=serializers.FileField(), min_length=1, max_length=MAX_PHOTOS
    )


def _finite(value):
    if value is not None and not math.isfinite(value):
        raise serializers.ValidationError(_msg_finite())
    return value


def _msg_both():
    return gettext("Send both latitude and longitude, or neither.")


def _msg_finite():
    return gettext("A finite number of degrees.")


def _photos(request) -> list:
    files = request.FILES.getlist("photos")
    others = [name for name in request.FILES if name != "photos"]
    if others:
        raise serializers.ValidationError(
            {others[0]: [gettext("Send photos as files named `photos`.")]}
        )
    if not 1 <= len(files) <= MAX_PHOTOS:
        raise serializers.ValidationError(
            {"photos": [gettext("A sighting has one to five photos.")]}
        )
    return files


class IdentificationCreateSerializer(serializers.Serializer):
    taxon = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class VerdictCreateSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Verdict.Outcome.choices)
    new_district_record = serializers.BooleanField(default=False)
    candidate_new_species = serializers.BooleanField(default=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class FlagOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=Flag.Reason.choices)
    status = serializers.ChoiceField(choices=Flag.Status.choices)


class FlagCreateSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(
        choices=[c for c in Flag.Reason.choices if c[0] != Flag.Reason.DUPLICATE_PHOTO]
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


# --- views ----------------------------------------------------------------------------------

_NOT_VISIBLE = OpenApiResponse(description="`not_found`: no sighting you may see has this id.")


def _visible_or_404(viewer, pk) -> Sighting:
    try:
        return sighting_visible_get(viewer=viewer, sighting_id=pk)
    except Sighting.DoesNotExist:
        raise NotFound() from None


class SightingListCreateView(generics.ListAPIView):
    serializer_class = SightingSerializer
    pagination_class = NewestFirst
    parser_classes = [MultiPartParser, JSONParser]
    throttle_scope = "sightings"

    def get_throttles(self):
        if self.request.method == "POST":
            return [ScopedRateThrottle()]
        return super().get_throttles()

    def get_queryset(self):
        """My own sightings, newest first (hidden ones included)."""
        return Sighting.objects.filter(observer=self.request.user).select_related(
            "taxon_guess", "community_taxon", "district"
        )

    def get_serializer_context(self):
        ctx = super().get_serializer_context()
        page = getattr(self, "_page", None) or []
        ctx["viewer"] = self.request.user
        ctx["true_locations"] = {s.pk: s.location for s in page if s.location}
        return ctx

    def paginate_queryset(self, queryset):
        self._page = super().paginate_queryset(queryset)
        return self._page

    @extend_schema(
        request={"multipart/form-data": SightingCreateFormSerializer},
        responses={
            201: SightingSerializer,
            200: SightingSerializer,
            503: OpenApiResponse(
                description="`photo_work_busy`: too many photos in work; retry shortly."
            ),
        },
    )
    def post(self, request):
        """Record a sighting: multipart, with one to five files named `photos`. The same
        `client_uuid` again answers 200 with the first sighting."""
        data = SightingCreateSerializer(
            data={k: request.data.get(k) for k in request.data if k not in request.FILES}
        )
        data.is_valid(raise_exception=True)
        files = _photos(request)
        v = data.validated_data
        draft = SightingDraft(
            taxon=v.get("taxon"),
            latitude=v.get("latitude"),
            longitude=v.get("longitude"),
            coordinate_system=v["coordinate_system"],
            accuracy_m=v.get("accuracy_m"),
            observed_at=v.get("observed_at"),
            count=v["count"],
            notes=v["notes"],
            place_name=v["place_name"],
            obscure=v["obscure"],
            client_uuid=v.get("client_uuid"),
        )
        sighting, created = sighting_submit(observer=request.user, draft=draft, files=files)
        return Response(
            render_sighting(sighting, request.user),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class SightingDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: SightingSerializer, 404: _NOT_VISIBLE})
    def get(self, request, pk):
        """One sighting, as this viewer may see it (no login needed)."""
        return Response(render_sighting(_visible_or_404(request.user, pk), request.user))


class IdentificationCreateView(APIView):
    @extend_schema(
        request=IdentificationCreateSerializer,
        responses={201: SightingSerializer, 404: _NOT_VISIBLE},
    )
    def post(self, request, pk):
        """Identify a sighting (replaces my earlier identification of it); answers the
        sighting with its new community taxon and grade."""
        data = IdentificationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _visible_or_404(request.user, pk)
        identification_add(
            user=request.user,
            sighting_id=pk,
            taxon_id=data.validated_data["taxon"],
            comment=data.validated_data["comment"],
        )
        sighting = _visible_or_404(request.user, pk)
        return Response(render_sighting(sighting, request.user), status=status.HTTP_201_CREATED)


class VerdictCreateView(APIView):
    @extend_schema(
        request=VerdictCreateSerializer,
        responses={
            201: SightingSerializer,
            403: OpenApiResponse(description="`not_institution_member`."),
            404: _NOT_VISIBLE,
        },
    )
    def post(self, request, pk):
        """An institution member's verdict: accepted, plausible or not accepted, with the
        "new record for this district" and "candidate new species" flags."""
        data = VerdictCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _visible_or_404(request.user, pk)
        verdict_record(user=request.user, sighting_id=pk, **data.validated_data)
        sighting = _visible_or_404(request.user, pk)
        return Response(render_sighting(sighting, request.user), status=status.HTTP_201_CREATED)


class FlagCreateView(APIView):
    @extend_schema(
        request=FlagCreateSerializer,
        responses={
            201: FlagOutSerializer,
            404: _NOT_VISIBLE,
        },
    )
    def post(self, request, pk):
        """Flag a sighting for moderation (spam, inappropriate, copyright)."""
        data = FlagCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _visible_or_404(request.user, pk)
        flag = flag_raise(user=request.user, sighting_id=pk, **data.validated_data)
        return Response(FlagOutSerializer(flag).data, status=status.HTTP_201_CREATED)


class _PhotoFileView(APIView):
    permission_classes = [AllowAny]
    variant = "image"

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)

    def get(self, request, pk, position):
        sighting = _visible_or_404(request.user, pk)
        photo = SightingPhoto.objects.filter(sighting=sighting, position=position).first()
        if photo is None:
            raise NotFound()
        stored = getattr(photo, self.variant)
        try:
            handle = stored.open("rb")
        except OSError:
            log.error("sighting photo file missing: %s", stored.name)
            raise NotFound() from None
        response = FileResponse(handle, content_type="image/jpeg")
        response["Cache-Control"] = "public, max-age=86400"
        response["X-Content-Type-Options"] = "nosniff"
        return response


_PHOTO_RESPONSES = {
    (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY, description="JPEG, no metadata"),
    404: OpenApiResponse(description="`not_found`: no such sighting or photo."),
}


class SightingPhotoView(_PhotoFileView):
    variant = "image"

    @extend_schema(responses=_PHOTO_RESPONSES, operation_id="biodiversity_sighting_photo")
    def get(self, request, pk, position):
        """A sighting's photo, re-encoded (at most 2048 px) without EXIF or GPS."""
        return super().get(request, pk, position)


class SightingThumbnailView(_PhotoFileView):
    variant = "thumbnail"

    @extend_schema(responses=_PHOTO_RESPONSES, operation_id="biodiversity_sighting_thumbnail")
    def get(self, request, pk, position):
        """A sighting's photo thumbnail (at most 320 px)."""
        return super().get(request, pk, position)
