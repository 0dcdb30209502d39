"""The offsets slice's HTTP side: residents (JWT) read programmes, link a mortgage and request
offsets; the bank (HMAC-signed, as every partner) decides links and answers offsets."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.adapters.batch.api import batch_answer, batch_answer_serializer, request_rows
from carbon.api.partner_auth import PartnerPrincipal, PartnerSignatureAuthentication
from carbon.api.permissions import IsResident
from carbon.models import Partner
from rewards.offsets.errors import NotABank, UnknownProgramme
from rewards.offsets.models import BankProgramme, LoanLink, LoanLinkStatus, Offset, fen_as_cny
from rewards.offsets.services import confirmations
from rewards.offsets.services.links import (
    loan_link_create,
    loan_link_decide,
    loan_link_revoke,
    loan_links_of,
)
from rewards.offsets.services.requests import (
    offset_request,
    offset_statement,
    offsets_of,
    programme_committed_fen,
    programmes_open,
    resident_month_use,
)

# Offsets shown in the overview; the yearly statement has all of a year's.
RECENT_OFFSETS = 100
_MONEY = {"help_text": 'CNY, as a decimal string with two places (e.g. "12.34").'}


def _errors(codes_by_status: dict[int, str]) -> dict[int, OpenApiResponse]:
    return {
        s: OpenApiResponse(description=f"Codes: {codes}.") for s, codes in codes_by_status.items()
    }


# --- serializers ---------------------------------------------------------------------------


class ProgrammeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    bank = serializers.CharField(source="bank.name")
    name = serializers.CharField()
    cny_per_kg = serializers.DecimalField(max_digits=10, decimal_places=4)
    categories = serializers.ListField(
        child=serializers.CharField(), help_text="Behaviour categories whose grams count."
    )
    min_grams = serializers.IntegerField()
    monthly_cap_g = serializers.IntegerField(allow_null=True, default=None)
    monthly_cap_cny = serializers.CharField(allow_null=True, default=None, **_MONEY)
    budget_left_cny = serializers.CharField(**_MONEY)
    my_month_g = serializers.IntegerField(help_text="Grams I offset this calendar month.")
    my_month_cny = serializers.CharField(**_MONEY)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True, default=None)


def _programme_body(programme: BankProgramme, *, user) -> dict:
    used = resident_month_use(user=user, programme=programme, now=timezone.now())
    return {
        "id": programme.pk,
        "bank": {"name": programme.bank.name},
        "name": programme.name,
        "cny_per_kg": programme.cny_per_kg,
        "categories": programme.categories,
        "min_grams": programme.min_grams,
        "monthly_cap_g": programme.monthly_cap_g,
        "monthly_cap_cny": fen_as_cny(programme.monthly_cap_fen),
        "budget_left_cny": fen_as_cny(
            max(0, programme.budget_fen - programme_committed_fen(programme=programme))
        ),
        "my_month_g": used.grams,
        "my_month_cny": fen_as_cny(used.fen),
        "starts_at": programme.starts_at,
        "ends_at": programme.ends_at,
    }


class LoanLinkSerializer(serializers.ModelSerializer):
    programme = serializers.IntegerField(source="programme_id")
    bank = serializers.CharField(source="programme.bank.name")
    loan_reference = serializers.CharField(
        source="masked_reference", help_text="Only the last four characters are kept."
    )
    link_token = serializers.SerializerMethodField(
        help_text="While pending: give it to the bank (its app or counter) so it can confirm "
        "the loan is yours."
    )

    class Meta:
        model = LoanLink
        fields = [
            "id",
            "programme",
            "bank",
            "loan_reference",
            "status",
            "link_token",
            "consent_given_at",
            "created_at",
            "decided_at",
            "refusal_reason",
            "revoked_at",
        ]
        read_only_fields = fields

    def get_link_token(self, link: LoanLink) -> str | None:
        return link.link_token if link.status == LoanLinkStatus.PENDING else None


class OffsetSerializer(serializers.ModelSerializer):
    programme = serializers.IntegerField(source="programme_id")
    bank = serializers.CharField(source="programme.bank.name")
    value_cny = serializers.SerializerMethodField(help_text=_MONEY["help_text"])
    interest_credited_cny = serializers.SerializerMethodField(
        help_text="What the bank credited against the loan's interest (once confirmed)."
    )
    reason = serializers.CharField(source="bank_reason", help_text="Why it was refused or failed.")

    class Meta:
        model = Offset
        fields = [
            "id",
            "programme",
            "bank",
            "grams",
            "cny_per_kg",
            "value_cny",
            "status",
            "interest_credited_cny",
            "reason",
            "requested_at",
            "sent_at",
            "resolved_at",
        ]
        read_only_fields = fields

    def get_value_cny(self, offset: Offset) -> str:
        return fen_as_cny(offset.value_fen)

    def get_interest_credited_cny(self, offset: Offset) -> str | None:
        return fen_as_cny(offset.interest_credited_fen)


class OverviewSerializer(serializers.Serializer):
    programmes = ProgrammeSerializer(many=True, help_text="Open bank programmes.")
    links = LoanLinkSerializer(many=True, help_text="My loan links, newest first.")
    offsets = OffsetSerializer(many=True, help_text=f"My {RECENT_OFFSETS} latest offsets.")


class OffsetRequestSerializer(serializers.Serializer):
    programme = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    grams = serializers.IntegerField(min_value=1, max_value=10**12)
    idempotency_key = serializers.UUIDField(format="hex_verbose")


class LoanLinkCreateSerializer(serializers.Serializer):
    programme = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    loan_reference = serializers.CharField(
        max_length=60,
        help_text="The loan's number at the bank; only a keyed hash and the "
        "last four characters are kept.",
    )
    consent = serializers.BooleanField(
        default=False,
        help_text="true: I agree that the bank receives my offsets and credits them to this loan.",
    )


class StatementSerializer(serializers.Serializer):
    year = serializers.IntegerField()
    count = serializers.IntegerField()
    grams = serializers.IntegerField()
    value_cny = serializers.CharField(**_MONEY)
    interest_credited_cny = serializers.CharField(**_MONEY)
    offsets = OffsetSerializer(many=True, help_text="The year's confirmed offsets, oldest first.")


class StatementQuerySerializer(serializers.Serializer):
    year = serializers.IntegerField(min_value=2000, max_value=2999)


# --- residents -------------------------------------------------------------------------------


class OffsetsView(APIView):
    permission_classes = [IsResident]

    @extend_schema(responses=OverviewSerializer)
    def get(self, request):
        """The open bank programmes (rate, caps, budget left, what I used this month), my
        loan links and my latest offsets with their status and CNY value."""
        user = request.user
        return Response(
            {
                "programmes": ProgrammeSerializer(
                    [_programme_body(p, user=user) for p in programmes_open()], many=True
                ).data,
                "links": LoanLinkSerializer(loan_links_of(user=user), many=True).data,
                "offsets": OffsetSerializer(offsets_of(user=user)[:RECENT_OFFSETS], many=True).data,
            }
        )

    @extend_schema(
        request=OffsetRequestSerializer,
        responses={
            201: OffsetSerializer,
            200: OffsetSerializer,
            **_errors(
                {
                    400: "invalid, invalid_amount, unknown_programme, offset_too_small",
                    409: "loan_link_required, programme_closed, offset_monthly_cap "
                    "(details: cap and what is left), offset_budget_exhausted (details.left_fen),"
                    " insufficient_balance (not enough unexpired grams of the programme's "
                    "categories), idempotency_conflict, account_closed",
                }
            ),
        },
    )
    def post(self, request):
        """Offset mortgage interest: hold `grams` of my green-travel points (only the
        programme's categories count) for the bank. The bank gets the request in the day's
        batch; when it confirms, the grams go to the bank and the interest it credited shows
        here; when it refuses or does not answer within OFFSETS_CONFIRM_DAYS, the grams come
        back. Within my monthly cap and the programme's budget. 201 with the offset; the
        same `idempotency_key` again answers 200 with the same offset."""
        data = OffsetRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        requested = offset_request(
            user=request.user,
            programme_id=v["programme"],
            grams=v["grams"],
            idempotency_key=str(v["idempotency_key"]),
        )
        return Response(
            OffsetSerializer(requested.offset).data,
            status=status.HTTP_201_CREATED if requested.created else status.HTTP_200_OK,
        )


class LoanLinksView(APIView):
    permission_classes = [IsResident]

    @extend_schema(
        request=LoanLinkCreateSerializer,
        responses={
            201: LoanLinkSerializer,
            200: LoanLinkSerializer,
            **_errors(
                {
                    400: "invalid, unknown_programme, loan_reference_invalid",
                    409: "consent_required, programme_closed, loan_link_exists, account_closed",
                }
            ),
        },
    )
    def post(self, request):
        """Link my mortgage at the programme's bank, with my consent (`consent`: true). The
        link is `pending` with a `link_token`: give it to the bank, which confirms the loan is
        mine (then offsets can be requested) or refuses. Asking again for the same loan
        answers 200 with the open link."""
        data = LoanLinkCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        programme = BankProgramme.objects.select_related("bank").filter(pk=v["programme"]).first()
        if programme is None:
            raise UnknownProgramme(details={"programme": v["programme"]})
        linked = loan_link_create(
            user=request.user,
            programme=programme,
            loan_reference=v["loan_reference"],
            consent=v["consent"],
        )
        return Response(
            LoanLinkSerializer(linked.link).data,
            status=status.HTTP_201_CREATED if linked.created else status.HTTP_200_OK,
        )


class LoanLinkView(APIView):
    permission_classes = [IsResident]

    @extend_schema(
        request=None, responses={200: LoanLinkSerializer, **_errors({409: "account_closed"})}
    )
    def delete(self, request, pk: int):
        """Revoke my loan link: no new offsets through it (those requested stay with the
        bank). Revoking again answers the link as it is."""
        return Response(LoanLinkSerializer(loan_link_revoke(user=request.user, link_id=pk)).data)


class StatementView(APIView):
    permission_classes = [IsResident]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "year", int, required=True, description="The calendar year, e.g. 2026."
            )
        ],
        responses=StatementSerializer,
    )
    def get(self, request):
        """My yearly statement: the offsets the bank confirmed in that year (city time), with
        their grams, CNY value and the interest the bank credited."""
        query = StatementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        statement = offset_statement(user=request.user, year=query.validated_data["year"])
        return Response(
            {
                "year": statement.year,
                "count": statement.count,
                "grams": statement.grams,
                "value_cny": fen_as_cny(statement.value_fen),
                "interest_credited_cny": fen_as_cny(statement.interest_credited_fen),
                "offsets": OffsetSerializer(statement.offsets, many=True).data,
            }
        )


# --- the bank ----------------------------------------------------------------------------------


class IsBank(BasePermission):
    """A signed request from a bank partner (any other partner is refused: not_a_bank)."""

    def has_permission(self, request, view):
        principal = request.user
        if not isinstance(principal, PartnerPrincipal):
            return False
        if principal.partner.kind != Partner.Kind.BANK:
            raise NotABank()
        return True


BANK_DECISIONS = ["confirmed", "refused"]


class BankLinkDecisionSerializer(serializers.Serializer):
    link_token = serializers.CharField(max_length=64, help_text="The token the resident showed.")
    loan_reference = serializers.CharField(max_length=60, help_text="The loan's full number.")
    status = serializers.ChoiceField(choices=BANK_DECISIONS)
    bank_link_id = serializers.CharField(
        max_length=100, required=False, default="", help_text="Your id for the link (to confirm)."
    )
    reason = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)

    def validate(self, attrs):
        if attrs["status"] == "confirmed" and not attrs["bank_link_id"].strip():
            raise serializers.ValidationError({"bank_link_id": ["Required to confirm."]})
        return attrs


class BankLinkSerializer(serializers.Serializer):
    link_token = serializers.CharField()
    status = serializers.CharField()
    bank_link_id = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True, default=None)


class BankLinkDecisionView(APIView):
    """The bank confirms or refuses a resident's loan link (server to server, HMAC-signed):
    the resident showed it the `link_token`; the bank names the loan (`loan_reference`, its
    full number, checked against what the resident sent) and, to confirm, its own
    `bank_link_id`, which our offset batches carry. Sending the same decision again answers
    the same."""

    authentication_classes = [PartnerSignatureAuthentication]
    permission_classes = [IsBank]

    @extend_schema(
        request=BankLinkDecisionSerializer,
        responses={
            200: BankLinkSerializer,
            **_errors(
                {
                    403: "not_a_bank",
                    404: "unknown_link_token",
                    409: "link_ref_mismatch, loan_link_resolved, replayed_request",
                }
            ),
        },
    )
    def post(self, request):
        data = BankLinkDecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        link = loan_link_decide(
            bank=request.user.partner,
            link_token=v["link_token"],
            loan_reference=v["loan_reference"],
            confirmed=v["status"] == "confirmed",
            bank_link_id=v["bank_link_id"].strip(),
            reason=v["reason"],
        )
        return Response(
            {
                "link_token": link.link_token,
                "status": link.status,
                "bank_link_id": link.bank_link_id,
                "decided_at": link.decided_at,
            }
        )


OffsetAnswersResultSerializer = batch_answer_serializer(
    name="BankOffsetAnswersResult",
    row_name="BankOffsetAnswerRowResult",
    id_field="offset_id",
    id_help="The answer's offset_id, as far as it could be read.",
    id_nullable=True,
    row_fields={
        "offset_status": serializers.CharField(
            required=False, help_text="The offset's status after this answer."
        ),
    },
    deprecated={},
)


class BankOffsetAnswersView(APIView):
    """The bank's answers about offsets of the batches we sent it (server to server,
    HMAC-signed): each `confirmed` with the `interest_credited_fen` (the grams then move to
    the bank's carbon account) or `refused` with a `reason` (the grams go back to the
    resident). `grams` (and `value_fen`, if sent) must be those of the batch: otherwise the
    row is refused `amount_mismatch` and nothing changes. Each row is answered on its own:
    accepted; duplicate (the same answer again); or an error with a code: unknown_offset
    (no offset of this bank), offset_not_sent, offset_resolved (answered otherwise before),
    record_conflict, offset_expired, amount_mismatch, invalid_field, malformed_row."""

    authentication_classes = [PartnerSignatureAuthentication]
    permission_classes = [IsBank]

    @extend_schema(
        request=confirmations.OffsetAnswers,
        responses={200: OffsetAnswersResultSerializer, **_errors({403: "not_a_bank"})},
    )
    def post(self, request):
        rows = request_rows(request, key="offsets", allow_empty=False)
        report = confirmations.offset_answers_apply(bank=request.user.partner, rows=rows)
        return Response(batch_answer(report, deprecated={}))
