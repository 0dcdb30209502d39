"""Appeals: a resident contests a refused claim or reports a credit that never came."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from carbon.api.pagination import AppealsNewestFirst
from carbon.api.parsing import JSONParser, MultiPartParser, request_fields, request_files
from carbon.api.permissions import IsResident
from carbon.api.serializers import AwareDateTimeField, ClaimSerializer
from carbon.models import Appeal, AppealStatus, Claim
from carbon.services.appeals import appeal_contest, appeal_report_missed


class AppealOutcomeSerializer(serializers.Serializer):
    """What deciding the appeal did: the grams credited, and the claim receipt's code and
    reason at that moment (an approval the caps leave at 0 g says `cap_reached`)."""

    credited_g = serializers.IntegerField()
    code = serializers.CharField(source="outcome_code")
    reason = serializers.CharField(source="outcome_reason")


class AppealSerializer(serializers.ModelSerializer):
    claim = ClaimSerializer(read_only=True)
    outcome = serializers.SerializerMethodField()

    @extend_schema_field(AppealOutcomeSerializer(allow_null=True))
    def get_outcome(self, obj: Appeal) -> dict | None:
        """Null while the appeal is open."""
        if obj.status == AppealStatus.OPEN:
            return None
        return AppealOutcomeSerializer(obj).data

    class Meta:
        model = Appeal
        fields = [
            "id",
            "kind",
            "status",
            "reason",
            "created_at",
            "decided_at",
            "decision_note",
            "outcome",
            "claim",
        ]


class RefusedAppealSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    idempotency_key = serializers.UUIDField(format="hex_verbose")


class MissedAppealSerializer(serializers.Serializer):
    behaviour = serializers.SlugField(max_length=64)
    quantity = serializers.DecimalField(max_digits=30, decimal_places=10, coerce_to_string=False)
    occurred_at = AwareDateTimeField()
    reason = serializers.CharField(max_length=2000)
    idempotency_key = serializers.UUIDField(format="hex_verbose")


class MissedAppealFormSerializer(MissedAppealSerializer):
    """The multipart form of a missed-credit report (documentation): a photo besides."""

    photo = serializers.FileField(required=False, help_text="A photo of the act, if any.")


class ClaimAppealView(APIView):
    permission_classes = [IsResident]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "appeals"

    @extend_schema(
        request=RefusedAppealSerializer, responses={201: AppealSerializer, 200: AppealSerializer}
    )
    def post(self, request, pk):
        """Appeal my refused claim; it goes back to the review queue."""
        data = RefusedAppealSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # Someone else's claim id is simply not found.
        claim = generics.get_object_or_404(Claim.objects.owned_by(request.user), pk=pk)
        appeal, created = appeal_contest(
            user=request.user,
            claim_id=claim.pk,
            reason=data.validated_data["reason"],
            idempotency_key=str(data.validated_data["idempotency_key"]),
        )
        return Response(
            AppealSerializer(appeal).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class AppealListCreateView(generics.ListAPIView):
    permission_classes = [IsResident]
    serializer_class = AppealSerializer
    pagination_class = AppealsNewestFirst
    parser_classes = [JSONParser, MultiPartParser]
    throttle_scope = "appeals"

    def get_throttles(self):
        if self.request.method == "POST":
            return [ScopedRateThrottle()]
        return super().get_throttles()

    def get_queryset(self):
        return Appeal.objects.filter(user=self.request.user).select_related(
            "claim", "claim__behaviour", "claim__factor"
        )

    @extend_schema(
        request={
            "application/json": MissedAppealSerializer,
            "multipart/form-data": MissedAppealFormSerializer,
        },
        responses={201: AppealSerializer, 200: AppealSerializer},
    )
    def post(self, request):
        """Report a missed credit (JSON, or multipart with a `photo`); a reviewer decides."""
        data = MissedAppealSerializer(data=request_fields(request))
        data.is_valid(raise_exception=True)
        v = data.validated_data
        appeal, created = appeal_report_missed(
            user=request.user,
            behaviour_code=v["behaviour"],
            quantity=v["quantity"],
            occurred_at=v["occurred_at"],
            reason=v["reason"],
            idempotency_key=str(v["idempotency_key"]),
            files=request_files(request),
        )
        return Response(
            AppealSerializer(appeal).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
