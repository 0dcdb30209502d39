"""Partner events (signed, server to server) and residents' links to their partner accounts."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.adapters.partner_events.feed import partner_events_ingest
from carbon.adapters.partner_events.links import (
    UnknownPartner,
    partner_link_create,
    partner_link_remove,
)
from carbon.adapters.partner_events.models import PartnerLink
from carbon.api.partner_auth import IsPartner, PartnerSignatureAuthentication
from carbon.models import Partner


class EventBatchSerializer(serializers.Serializer):
    events = serializers.ListField(child=serializers.JSONField(), allow_empty=False)


ROW_FIELDS = {
    "event_id": serializers.CharField(),
    "status": serializers.ChoiceField(["accepted", "duplicate", "error"]),
    "code": serializers.CharField(required=False),
    "message": serializers.CharField(required=False),
    "claim_status": serializers.CharField(required=False),
}


class PartnerEventsView(APIView):
    """Signed batch of events from a partner platform.

    Each event: `event_id` (the partner's unique id; resending it is harmless), `behaviour`
    (a code the partner is allowed to report), `user_ref` (the partner's own id of the
    resident, which the resident linked), `occurred_at` (ISO-8601 with offset), and the
    behaviour's fields: bike-share `distance_km` + `duration_s`; nev-ride `distance_km`;
    walking `steps`; recycling `weight_kg` + `material`; saved-electricity `saved_kwh` +
    `period` (YYYY-MM); no-cutlery `order_id` + `cutlery: false`; second-hand `items` +
    `item_category`; e-receipt `receipts`; own-bag `uses`; others `quantity`.
    The answer reports every row: accepted, duplicate or error (with a code); good rows
    apply even when others fail.
    """

    authentication_classes = [PartnerSignatureAuthentication]
    permission_classes = [IsPartner]

    @extend_schema(
        request=EventBatchSerializer,
        responses=inline_serializer(
            "PartnerEventBatchResult",
            {
                "received": serializers.IntegerField(),
                "accepted": serializers.IntegerField(),
                "duplicate": serializers.IntegerField(),
                "error": serializers.IntegerField(),
                "results": inline_serializer("PartnerEventRowResult", ROW_FIELDS, many=True),
            },
        ),
    )
    def post(self, request):
        data = EventBatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            partner_events_ingest(
                partner=request.user.partner, events=data.validated_data["events"]
            )
        )


class PartnerListView(APIView):
    """Partners whose accounts residents can link, with the behaviours they report."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "PartnerPublic",
            {
                "id": serializers.IntegerField(),
                "name": serializers.CharField(),
                "kind": serializers.CharField(),
                "behaviours": serializers.ListField(child=serializers.CharField()),
            },
            many=True,
        )
    )
    def get(self, request):
        partners = (
            Partner.objects.filter(is_active=True, behaviours__isnull=False)
            .distinct()
            .prefetch_related("behaviours")
        )
        return Response(
            [
                {
                    "id": p.pk,
                    "name": p.name,
                    "kind": p.kind,
                    "behaviours": sorted(b.code for b in p.behaviours.all()),
                }
                for p in partners
            ]
        )


class PartnerLinkCreateSerializer(serializers.Serializer):
    partner = serializers.IntegerField()
    external_ref = serializers.CharField(max_length=200)
    consent = serializers.BooleanField(default=False)


class PartnerLinkSerializer(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.name")

    class Meta:
        model = PartnerLink
        fields = ["id", "partner", "linked_at"]


class PartnerLinksView(APIView):
    @extend_schema(responses=PartnerLinkSerializer(many=True))
    def get(self, request):
        links = PartnerLink.objects.filter(
            user=request.user, unlinked_at__isnull=True
        ).select_related("partner")
        return Response(PartnerLinkSerializer(links, many=True).data)

    @extend_schema(request=PartnerLinkCreateSerializer, responses={201: PartnerLinkSerializer})
    def post(self, request):
        """Link my account at a partner (my id there is stored only as a keyed hash). Events
        the partner sent earlier, still inside their claim window, are credited now."""
        if not getattr(request.user, "email", None):
            raise PermissionDenied()
        data = PartnerLinkCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        partner = Partner.objects.filter(pk=data.validated_data["partner"], is_active=True).first()
        if partner is None:
            raise UnknownPartner()
        link = partner_link_create(
            user=request.user,
            partner=partner,
            external_ref=data.validated_data["external_ref"],
            consent=data.validated_data["consent"],
        )
        return Response(PartnerLinkSerializer(link).data, status=status.HTTP_201_CREATED)


class PartnerLinkView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int):
        partner_link_remove(user=request.user, link_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
