"""Partner events (signed, server to server) and residents' links to their partner accounts."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from pydantic import BaseModel, Field
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.adapters.batch.api import (
    BatchJSONParser,
    batch_answer,
    batch_answer_serializer,
    request_rows,
)
from carbon.adapters.partner_events import feed
from carbon.adapters.partner_events.links import (
    UnknownPartner,
    partner_link_create,
    partner_link_remove,
)
from carbon.adapters.partner_events.models import PartnerLink
from carbon.api.partner_auth import IsPartner, PartnerSignatureAuthentication
from carbon.models import Partner


class EventBatch(BaseModel):
    """A batch of events. Each is checked on its own: a bad one is reported in its row of the
    answer and never refuses the others."""

    events: list[feed.DocumentedEvent] = Field(
        min_length=1,
        max_length=feed.MAX_BATCH,
        description=f"1 to {feed.MAX_BATCH} events; a larger batch is refused whole (413 "
        "batch_too_large). Each event has the common fields and those of its behaviour.",
    )


# The first version of this answer named its rows so; kept for the partners reading them.
DEPRECATED_ANSWER_FIELDS = {"results": "rows"}

EventBatchResultSerializer = batch_answer_serializer(
    name="PartnerEventBatchResult",
    row_name="PartnerEventRowResult",
    id_field="event_id",
    id_help="The event's event_id, as far as it could be read (empty when it could not).",
    id_nullable=False,
    row_fields={
        "claim_status": serializers.CharField(
            required=False,
            help_text="The claim the event became (accepted and duplicate rows): a claim "
            "status, or awaiting_link while nobody linked this user_ref.",
        ),
    },
    deprecated=DEPRECATED_ANSWER_FIELDS,
)


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
    apply even when others fail. An event_id sent again with the same content is a
    `duplicate`, with other content an error `record_conflict`.
    """

    authentication_classes = [PartnerSignatureAuthentication]
    permission_classes = [IsPartner]
    parser_classes = [BatchJSONParser]

    @extend_schema(request=EventBatch, responses=EventBatchResultSerializer)
    def post(self, request):
        events = request_rows(request, key="events", allow_empty=False)
        report = feed.partner_events_ingest(partner=request.user.partner, events=events)
        return Response(batch_answer(report, deprecated=DEPRECATED_ANSWER_FIELDS))


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
