"""Partner events (signed, server to server), residents' links to their partner accounts, and
the partner's side of proving those links (confirm, or fetch a one-time code)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from pydantic import BaseModel, Field
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.adapters.batch.api import (
    batch_answer,
    batch_answer_serializer,
    request_rows,
)
from carbon.adapters.partner_events import feed
from carbon.adapters.partner_events.links import (
    UnknownPartner,
    partner_link_code_issue,
    partner_link_confirm_by_partner,
    partner_link_confirm_with_code,
    partner_link_create,
    partner_link_remove,
    partner_links_of,
)
from carbon.adapters.partner_events.models import PartnerLink
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
    parser_classes = [JSONParser]  # the API's bounded JSON parser

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
    external_ref = serializers.CharField(
        max_length=200, help_text="Your id at the partner; only a keyed hash is kept."
    )
    consent = serializers.BooleanField(default=False)


class PartnerLinkSerializer(ProvenLinkSerializer):
    partner = serializers.CharField(source="partner.name")
    partner_id = serializers.IntegerField()

    class Meta:
        model = PartnerLink
        fields = ["id", "partner", "partner_id", *LINK_STATE_FIELDS]
        extra_kwargs = link_state_help(who="partner", where="in its app", what="account")
        read_only_fields = fields


class EarlierEventsSerializer(serializers.Serializer):
    claims = serializers.IntegerField(help_text="Earlier events turned into claims now.")
    credited_g = serializers.IntegerField()


class PartnerLinkConfirmedByCodeSerializer(PartnerLinkSerializer):
    earlier_events = EarlierEventsSerializer(read_only=True)

    class Meta(PartnerLinkSerializer.Meta):
        fields = [*PartnerLinkSerializer.Meta.fields, "earlier_events"]


class PartnerLinksView(APIView):
    permission_classes = [IsResident]

    def get_throttles(self):
        if self.request.method == "POST":
            return [LinkAttemptThrottle()]
        return super().get_throttles()

    @extend_schema(responses=PartnerLinkSerializer(many=True))
    def get(self, request):
        """My partner accounts: linked ones, and those waiting for the partner's proof."""
        links = partner_links_of(user=request.user)
        return Response(PartnerLinkSerializer(links, many=True).data)

    @extend_schema(
        request=PartnerLinkCreateSerializer,
        responses={
            202: PartnerLinkSerializer,
            200: PartnerLinkSerializer,
            **link_errors(
                {
                    400: "partner_link_invalid, unknown_partner, consent_required, invalid",
                    409: "too_many_pending_links, link_locked",
                    429: "throttled",
                }
            ),
        },
        description="Ask to link my account at a partner (my id there is stored only as a "
        "keyed hash). Answers 202 with a `pending` link that earns nothing until the partner "
        "confirms the account is mine; asking again answers 200 with my link as it is. Events "
        "the partner sent earlier, still inside their claim window, are credited on "
        "confirmation. Whether someone else asked for the account is never said.\n" + PROTOCOL,
    )
    def post(self, request):
        data = PartnerLinkCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        partner = Partner.objects.filter(pk=data.validated_data["partner"], is_active=True).first()
        if partner is None:
            raise UnknownPartner()
        linked = partner_link_create(
            user=request.user,
            partner=partner,
            external_ref=data.validated_data["external_ref"],
            consent=data.validated_data["consent"],
        )
        return Response(
            PartnerLinkSerializer(linked.link).data,
            status=status.HTTP_202_ACCEPTED if linked.created else status.HTTP_200_OK,
        )


class PartnerLinkView(APIView):
    permission_classes = [IsResident]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int):
        """Unlink a partner account of mine (or cancel a pending link)."""
        partner_link_remove(user=request.user, link_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PartnerLinkConfirmView(APIView):
    permission_classes = [IsResident]
    throttle_classes = [LinkAttemptThrottle]

    @extend_schema(
        request=LinkCodeSerializer,
        responses={
            200: PartnerLinkConfirmedByCodeSerializer,
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
        """Confirm my pending partner account with the one-time code the partner showed me
        in its app. The partner's earlier events still inside their window are credited now.
        A wrong code answers 400 invalid_link_code with `attempts_left`; after the last one
        the link is void (410 link_void); no live code: 409 no_link_code."""
        data = LinkCodeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        linked = partner_link_confirm_with_code(
            user=request.user, link_id=pk, code=data.validated_data["code"]
        )
        return Response(
            {
                **PartnerLinkSerializer(linked.link).data,
                "earlier_events": {
                    "claims": len(linked.claims),
                    "credited_g": linked.credited_g,
                },
            }
        )


class PartnerLinkConfirmByPartnerView(APIView):
    """The partner confirms a resident's link to an account of its own (server to server,
    HMAC-signed as the event feed): its customer `user_ref` (its own id, as in its events),
    signed in at the partner, brought this `link_token` from our app. 404
    unknown_link_token, 409 link_ref_mismatch (the token names another account: someone
    asked to link an account that is not this customer's), 410 link_void. Confirming again
    answers the same."""

    authentication_classes = [PartnerSignatureAuthentication]
    permission_classes = [IsPartner]

    @extend_schema(
        request=PartnerLinkConfirmSerializer,
        responses={
            200: PartnerLinkConfirmedSerializer,
            **link_errors(
                {
                    400: "partner_link_invalid, invalid",
                    401: "invalid_signature",
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
        linked = partner_link_confirm_by_partner(
            partner=request.user.partner, link_token=v["link_token"], user_ref=v["user_ref"]
        )
        return Response(confirmed_body(linked.link))


class PartnerLinkCodeView(APIView):
    """A one-time code for the pending links of one of the partner's customers (server to
    server, HMAC-signed), to show only to that customer in the partner's own app; the
    resident enters it in our app. Each call replaces the previous code. 404 no_pending_link
    when nobody is waiting to link the account."""

    authentication_classes = [PartnerSignatureAuthentication]
    permission_classes = [IsPartner]

    @extend_schema(
        request=PartnerLinkCodeRequestSerializer,
        responses={
            200: PartnerLinkCodeSerializer,
            **link_errors(
                {
                    400: "partner_link_invalid, invalid",
                    401: "invalid_signature",
                    404: "no_pending_link",
                    409: "replayed_request",
                }
            ),
        },
    )
    def post(self, request):
        data = PartnerLinkCodeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = partner_link_code_issue(
            partner=request.user.partner, user_ref=data.validated_data["user_ref"]
        )
        return Response(PartnerLinkCodeSerializer(issued_code_body(issued)).data)
