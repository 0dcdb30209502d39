"""The transit API: a resident's linked cards, and the operator's signed tap feed. Thin:
validate, call a service of this slice, render."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from pydantic import BaseModel, Field
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from carbon.adapters.batch.api import (
    BatchJSONParser,
    batch_answer,
    batch_answer_serializer,
    request_rows,
)
from carbon.adapters.transit import cards as card_services
from carbon.adapters.transit import feed as feed_services
from carbon.adapters.transit.models import TransitCard
from carbon.api.partner_auth import IsPartner, PartnerSignatureAuthentication
from carbon.models import Partner

# --- serializers --------------------------------------------------------------------------


class TransitCardSerializer(serializers.ModelSerializer):
    class Meta:
        model = TransitCard
        fields = ["id", "label", "last_digits", "linked_at"]


class TransitCardLinkSerializer(serializers.Serializer):
    card_number = serializers.CharField(
        max_length=40,
        write_only=True,
        help_text="8 to 20 digits; spaces and dashes are ignored. Only a keyed hash and the last "
        "four digits are kept.",
    )
    label = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    consent = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Grant the transit_card data source in the same call (needed once).",
    )


class EarlierTripsSerializer(serializers.Serializer):
    claims = serializers.IntegerField(help_text="Earlier trips of the card turned into claims now.")
    credited_g = serializers.IntegerField()
    expired = serializers.IntegerField(
        help_text="Earlier trips too old to credit (outside the claim window)."
    )


class TransitCardLinkedSerializer(TransitCardSerializer):
    earlier_trips = EarlierTripsSerializer(read_only=True)

    class Meta(TransitCardSerializer.Meta):
        fields = [*TransitCardSerializer.Meta.fields, "earlier_trips"]


class TapBatch(BaseModel):
    """A batch of taps. Each tap is checked on its own: a bad one is reported in its row of the
    answer and never refuses the others."""

    taps: list[feed_services.TapRecord] = Field(
        max_length=feed_services.MAX_BATCH_TAPS,
        description=f"At most {feed_services.MAX_BATCH_TAPS} taps; a larger batch is refused "
        "whole (413 batch_too_large).",
    )


# The first version of this answer named two counts so; kept for the operators reading them.
DEPRECATED_ANSWER_FIELDS = {"duplicates": "duplicate", "errors": "error"}

TapBatchReportSerializer = batch_answer_serializer(
    name="TapBatchReport",
    row_name="TapRowReport",
    id_field="record_id",
    id_help="The tap's record_id, as far as it could be read (null when it could not).",
    id_nullable=True,
    fields={
        "trips": inline_serializer(
            "TapBatchTrips",
            {
                "created": serializers.IntegerField(),
                "claims": serializers.IntegerField(),
                "review": serializers.IntegerField(),
                "awaiting_link": serializers.IntegerField(),
                "expired": serializers.IntegerField(),
            },
        ),
    },
    deprecated=DEPRECATED_ANSWER_FIELDS,
)


# --- a resident's cards -------------------------------------------------------------------


class CardLinkThrottle(UserRateThrottle):
    """Linking answers whether a card number is taken: slow down anyone trying numbers."""

    scope = "transit_cards"

    def get_rate(self):
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope, "20/hour")


class TransitCardListView(APIView):
    def get_throttles(self):
        return [CardLinkThrottle()] if self.request.method == "POST" else super().get_throttles()

    @extend_schema(responses=TransitCardSerializer(many=True))
    def get(self, request):
        """My linked cards (only the last four digits are known)."""
        cards = card_services.transit_cards_of(user=request.user)
        return Response(TransitCardSerializer(cards, many=True).data)

    @extend_schema(
        request=TransitCardLinkSerializer,
        responses={201: TransitCardLinkedSerializer, 200: TransitCardLinkedSerializer},
    )
    def post(self, request):
        """Link a card. Needs the transit_card consent (or "consent": true here). The card's
        trips from before the link that are still inside the claim window are credited now.
        Linking a card already linked to me answers 200 with it; a card linked to someone
        else is refused with 409 card_linked_to_another_resident."""
        data = TransitCardLinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        linked = card_services.transit_card_link(
            user=request.user, card_number=v["card_number"], label=v["label"], consent=v["consent"]
        )
        body = {
            **TransitCardSerializer(linked.card).data,
            "earlier_trips": {
                "claims": len(linked.claims),
                "credited_g": linked.credited_g,
                "expired": linked.expired_trips,
            },
        }
        return Response(
            body, status=status.HTTP_201_CREATED if linked.created else status.HTTP_200_OK
        )


class TransitCardDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        """Unlink one of my cards; its later taps wait for a new link."""
        card_services.transit_card_unlink(user=request.user, card_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- the operator's feed ------------------------------------------------------------------


class IsTransitOperator(BasePermission):
    message = _("Only transit operators may push taps.")

    def has_permission(self, request, view):
        return IsPartner().has_permission(request, view) and (
            request.user.partner.kind == Partner.Kind.TRANSIT_OPERATOR
        )


class TransitTapsView(APIView):
    """The transit operator's tap feed (server to server, HMAC-signed).

    Sign the raw body: X-Partner-Key, X-Timestamp (Unix seconds) and X-Signature = hex
    HMAC-SHA256 with the partner secret over "{timestamp}.{body}". Each body may be sent
    once; send a retry with a new timestamp and signature.

    A tap names the card by `card_hash` = hex HMAC-SHA256(TRANSIT_CARD_HASH_KEY, card number
    with spaces and dashes removed); the key is shared with the operator, card numbers never
    travel. Rows are idempotent by `record_id`: the same record again is a `duplicate` (nothing
    new), the same id with other content is an error `record_conflict`. Each row is stored
    whole or not at all, bad rows are reported with a code and never block the good ones.
    The accepted taps are paired into trips and credited to linked cards before the answer.
    """

    authentication_classes = [PartnerSignatureAuthentication]
    permission_classes = [IsTransitOperator]
    parser_classes = [BatchJSONParser]

    @extend_schema(
        request=TapBatch,
        responses={200: TapBatchReportSerializer},
        examples=[
            OpenApiExample(
                "A metro trip",
                request_only=True,
                value={
                    "taps": [
                        {
                            "record_id": "gate-0912-000001",
                            "card_hash": "0" * 64,
                            "station": "m-jiedaokou",
                            "mode": "metro",
                            "direction": "in",
                            "at": "2025-05-01T08:12:30+08:00",
                        },
                        {
                            "record_id": "gate-0433-000017",
                            "card_hash": "0" * 64,
                            "station": "m-wuchang-railway-station",
                            "mode": "metro",
                            "direction": "out",
                            "at": "2025-05-01T08:41:02+08:00",
                        },
                    ]
                },
            )
        ],
    )
    def post(self, request):
        taps = request_rows(request, key="taps")
        report = feed_services.transit_taps_ingest(partner=request.user.partner, rows=taps)
        return Response(batch_answer(report, deprecated=DEPRECATED_ANSWER_FIELDS))
