"""Appeals: a resident contests a refused claim or reports a credit that never came."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.api.pagination import AppealsNewestFirst
from carbon.api.parsing import JSONParser, MultiPartParser, request_fields, request_files
from carbon.api.serializers import AwareDateTimeField, ClaimSerializer
from carbon.models import Appeal, Claim
from carbon.services.appeals import appeal_contest, appeal_report_missed


class AppealSerializer(serializers.ModelSerializer):
    claim = ClaimSerializer(read_only=True)

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
    serializer_class = AppealSerializer
    pagination_class = AppealsNewestFirst
    parser_classes = [JSONParser, MultiPartParser]

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
