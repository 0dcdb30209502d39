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
    batch_answer,
    batch_answer_serializer,
    request_rows,
)
from carbon.adapters.transit import cards as card_services
from carbon.adapters.transit import feed as feed_services
from carbon.adapters.transit.models import TransitCard
from carbon.api.linking import (
    LINK_STATE_FIELDS,
    PROTOCOL,
    LinkAttemptThrottle,
    LinkCodeSerializer,
    PartnerLinkCodeRequestSerializer,
    PartnerLinkCodeSerializer,
    PartnerLinkConfirmedSerializer,
    PartnerLinkConfirmSerializer,
    ProvenLinkSerializer,
    confirmed_body,
    issued_code_body,
    link_errors,
    link_state_help,
)
from carbon.api.parsing import JSONParser
from carbon.api.partner_auth import IsPartner, PartnerSignatureAuthentication
from carbon.api.permissions import IsResident
from carbon.models import Partner

# --- serializers --------------------------------------------------------------------------


class TransitCardSerializer(ProvenLinkSerializer):
    class Meta:
        model = TransitCard
        fields = ["id", "label", "last_digits", *LINK_STATE_FIELDS]
        extra_kwargs = link_state_help(who="operator", where="its app or counter", what="card")
        read_only_fields = fields


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


def _linked_body(linked: card_services.CardLinked) -> dict:
    return {
        **TransitCardSerializer(linked.card).data,
        "earlier_trips": {
            "claims": len(linked.claims),
            "credited_g": linked.credited_g,
            "expired": linked.expired_trips,
        },
    }


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


class IsTransitOperator(BasePermission):
    message = _("Only transit operators may push taps or confirm card links.")

    def has_permission(self, request, view):
        return IsPartner().has_permission(request, view) and (
            request.user.partner.kind == Partner.Kind.TRANSIT_OPERATOR
        )


class CardLinkThrottle(UserRateThrottle):
    """Asking to link takes any card number: slow down anyone trying numbers."""

    scope = "transit_cards"

    def get_rate(self):
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope, "20/hour")


class TransitCardListView(APIView):
    permission_classes = [IsResident]

    def get_throttles(self):
        if self.request.method == "POST":
            return [CardLinkThrottle(), LinkAttemptThrottle()]
        return super().get_throttles()

    @extend_schema(responses=TransitCardSerializer(many=True))
    def get(self, request):
        """My cards: linked ones, and those waiting for the operator's proof (only the last
        four digits are known)."""
        cards = card_services.transit_cards_of(user=request.user)
        return Response(TransitCardSerializer(cards, many=True).data)

    @extend_schema(
        request=TransitCardLinkSerializer,
        responses={
            202: TransitCardSerializer,
            200: TransitCardSerializer,
            **link_errors(
                {
                    400: "invalid_card_number, invalid",
                    409: "consent_required, too_many_pending_links, link_locked",
                    429: "throttled",
                }
            ),
        },
        description='Ask to link a card. Needs the transit_card consent (or "consent": true '
        "here). Answers 202 with a `pending` link that earns nothing until the operator "
        "confirms that the card is yours; asking again for a card of yours answers 200 with "
        "your link as it is (pending or confirmed). Whether someone else asked for the card "
        "is never said.\n" + PROTOCOL,
    )
    def post(self, request):
        data = TransitCardLinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        linked = card_services.transit_card_link(
            user=request.user, card_number=v["card_number"], label=v["label"], consent=v["consent"]
        )
        return Response(
            TransitCardSerializer(linked.card).data,
            status=status.HTTP_202_ACCEPTED if linked.created else status.HTTP_200_OK,
        )


class TransitCardDetailView(APIView):
    permission_classes = [IsResident]

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        """Unlink one of my cards (or cancel a pending link); its later taps wait for a new
        link."""
        card_services.transit_card_unlink(user=request.user, card_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TransitCardConfirmView(APIView):
    permission_classes = [IsResident]
    throttle_classes = [LinkAttemptThrottle]

    @extend_schema(
        request=LinkCodeSerializer,
        responses={
            200: TransitCardLinkedSerializer,
            **link_errors(
                {
                    400: "invalid_link_code (details.attempts_left), invalid",
                    404: "not_found",
                    409: "no_link_code",
                    410: "link_void (details.reason: attempts_exhausted, expired, superseded, "
                    "cancelled)",
                    429: "throttled",
                }
            ),
        },
    )
    def post(self, request, pk: int):
        """Confirm my pending card with the one-time code the operator showed me (its app,
        the card's statement). The card's earlier trips still inside the claim window are
        credited now. A wrong code answers 400 invalid_link_code with `attempts_left`; after
        the last one the link is void (410 link_void); no live code: 409 no_link_code."""
        data = LinkCodeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        linked = card_services.transit_card_confirm_with_code(
            user=request.user, card_id=pk, code=data.validated_data["code"]
        )
        return Response(_linked_body(linked))


class TransitLinkConfirmView(APIView):
    """The operator confirms a resident's card link (server to server, HMAC-signed as the
    tap feed): its customer, signed in at the operator and holding the card `user_ref`
    (its card_hash), brought this `link_token` from our app. 404 unknown_link_token, 409
    link_ref_mismatch (the token names another card: someone asked to link a card that is
    not this customer's), 410 link_void. Confirming again answers the same."""

    authentication_classes = [PartnerSignatureAuthentication]
    permission_classes = [IsTransitOperator]

    @extend_schema(
        request=PartnerLinkConfirmSerializer,
        responses={
            200: PartnerLinkConfirmedSerializer,
            **link_errors(
                {
                    400: "invalid_card_hash, invalid",
                    401: "invalid_signature",
                    403: "permission_denied",
                    404: "unknown_link_token",
                    409: "link_ref_mismatch, replayed_request",
                    410: "link_void",
                }
            ),
        },
    )
    def post(self, request):
        data = PartnerLinkConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        linked = card_services.transit_card_confirm_by_operator(
            partner=request.user.partner, link_token=v["link_token"], user_ref=v["user_ref"]
        )
        return Response(confirmed_body(linked.card))


class TransitLinkCodeView(APIView):
    """A one-time code for the pending links of a card (server to server, HMAC-signed), to
    show only to the card's holder (the operator's app, the card's statement); the resident
    enters it in our app. Each call replaces the previous code. 404 no_pending_link when
    nobody is waiting to link the card."""

    authentication_classes = [PartnerSignatureAuthentication]
    permission_classes = [IsTransitOperator]

    @extend_schema(
        request=PartnerLinkCodeRequestSerializer,
        responses={
            200: PartnerLinkCodeSerializer,
            **link_errors(
                {
                    400: "invalid_card_hash, invalid",
                    401: "invalid_signature",
                    403: "permission_denied",
                    404: "no_pending_link",
                    409: "replayed_request",
                }
            ),
        },
    )
    def post(self, request):
        data = PartnerLinkCodeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = card_services.transit_card_code_issue(
            partner=request.user.partner, user_ref=data.validated_data["user_ref"]
        )
        return Response(PartnerLinkCodeSerializer(issued_code_body(issued)).data)


# --- the operator's feed ------------------------------------------------------------------


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
    parser_classes = [JSONParser]  # the API's bounded JSON parser

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
