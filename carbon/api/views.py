"""The resident and partner API of the carbon core. Thin: validate, call a service, render."""

from __future__ import annotations

from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from carbon.api import serializers as s
from carbon.api.authentication import account_as_authenticated, authenticators_reading
from carbon.api.pagination import ClaimsNewestFirst, LedgerNewestFirst
from carbon.api.parsing import JSONParser, MultiPartParser, request_fields, request_files
from carbon.api.partner_auth import IsPartner, PartnerSignatureAuthentication
from carbon.api.permissions import IsResident
from carbon.models import Behaviour, Claim, ConsentScope, EmissionFactor
from carbon.services import catalogue, people
from carbon.services import claims as claim_services
from carbon.services.ledger import balance_for_user, ledger_entries_for_user


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "register"

    @extend_schema(request=s.RegisterSerializer, responses={201: s.MeSerializer})
    def post(self, request):
        data = s.RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = people.resident_register(
            email=data.validated_data["email"],
            password=data.validated_data["password"],
            display_name=data.validated_data["display_name"],
            community_code=data.validated_data.get("community") or None,
        )
        return Response(s.MeSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(TokenObtainPairView):
    """Failed logins are also counted per account and per client (django-axes): past the
    limit, this answers 429 until the cool-off ends or an administrator lifts it."""

    serializer_class = s.LoginSerializer
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"


class RefreshView(TokenRefreshView):
    """Rotating: each refresh token works once. Presenting a used one again ends every
    session descended from the same login (reason `token_reused`)."""

    serializer_class = s.RefreshSerializer
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "refresh"


class MeView(APIView):
    """Every account's own profile, whatever its role (merchant staff and institution members
    sign in here too): reading and editing it, and erasing the account. A non-resident's
    balance reads as zero (carbon.services.ledger.balance_for_user)."""

    permission_classes = [IsAuthenticated]
    throttle_scope = "erase"

    def get_authenticators(self):
        # The user's row read with their community and district, which /me renders, and
        # their ledger account (its balance).
        return authenticators_reading(super().get_authenticators(), area=True, account=True)

    def get_throttles(self):
        # Deleting checks the password: a stolen access token must not become a way to
        # guess it. Reading and editing the profile are not limited.
        return (
            [ScopedRateThrottle()] if self.request.method == "DELETE" else super().get_throttles()
        )

    def _render(self, user, account=None):
        return {
            **s.MeSerializer(user).data,
            **s.BalanceSerializer(balance_for_user(user=user, account=account)).data,
        }

    # Named apart from MeSerializer: an inline "Me" collided with its component and the
    # schema showed /me without the balance.
    @extend_schema(responses=s.MeWithBalanceSerializer)
    def get(self, request):
        # Only the read renders the account as authenticated; PATCH and DELETE write first.
        return Response(self._render(request.user, account_as_authenticated(request.user)))

    @extend_schema(request=s.MeUpdateSerializer, responses=s.MeWithBalanceSerializer)
    def patch(self, request):
        data = s.MeUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = people.resident_update(user=request.user, **data.validated_data)
        return Response(self._render(user))

    @extend_schema(request=s.DeleteAccountSerializer, responses={204: None})
    def delete(self, request):
        """Erase my account: personal data goes, the ledger keeps anonymous entries."""
        data = s.DeleteAccountSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not request.user.check_password(data.validated_data["password"]):
            raise serializers.ValidationError({"password": [_("Wrong password.")]})
        people.user_erase(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeExportView(APIView):
    """Open to every account, not only residents': staff accounts hold personal data too,
    and its holder may always have a copy."""

    @extend_schema(
        responses={200: OpenApiResponse(description="All data we hold about me, as JSON")}
    )
    def get(self, request):
        response = Response(people.user_export(user=request.user))
        response["Content-Disposition"] = 'attachment; filename="my-carbon-data.json"'
        return response


class ConsentListView(APIView):
    """Open to every account, as revoking is: a resident who became staff still sees (and
    may withdraw) what they consented to."""

    @extend_schema(responses=s.ConsentSerializer(many=True))
    def get(self, request):
        return Response(s.ConsentSerializer(request.user.consents.all(), many=True).data)


# A data source by its code; the enum lets clients (and the schema fuzz) name a real one.
_SCOPE = OpenApiParameter("scope", enum=ConsentScope.values, location=OpenApiParameter.PATH)


class ConsentView(APIView):
    def get_permissions(self):
        # Granting authorises a data source for crediting: residents only. Withdrawing a
        # consent must stay as easy as giving it, whatever the account became since.
        if self.request.method == "PUT":
            return [IsResident()]
        return super().get_permissions()

    @extend_schema(request=None, responses=s.ConsentSerializer, parameters=[_SCOPE])
    def put(self, request, scope: str):
        """Authorise a data source (idempotent)."""
        return Response(
            s.ConsentSerializer(people.consent_grant(user=request.user, scope=scope)).data
        )

    @extend_schema(request=None, responses={204: None}, parameters=[_SCOPE])
    def delete(self, request, scope: str):
        people.consent_revoke(user=request.user, scope=scope)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BehaviourListView(generics.ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = s.BehaviourSerializer
    pagination_class = None

    def get_queryset(self):
        return Behaviour.objects.filter(is_active=True).prefetch_related(
            Prefetch("factors", queryset=EmissionFactor.objects.select_related("district"))
        )

    def list(self, request, *args, **kwargs):
        # The listing changes only with a publication or when a factor takes or leaves
        # force: rendered once per catalogue version and language, not per request.
        def build(snapshot):
            now = timezone.now()
            # No request in its context: the kept value serves every request (plain lists).
            data = list(s.BehaviourSerializer(snapshot.active(), many=True).data)
            return data, catalogue.factors_next_change(snapshot=snapshot, after=now)

        return Response(catalogue.catalogue_memo(("behaviours", get_language()), build))


def _claims_as_rendered(claims):
    """Claims with the columns ClaimSerializer renders and no more: a page of 50 read every
    column of each claim (its evidence JSON parsed), of its behaviour and of its factor, to
    show the behaviour's code and the factor's version. A field added to the serializer and
    not here costs a statement per row: tests/carbon/test_request_path.py counts them."""
    return claims.select_related("behaviour", "factor").only(
        "id",
        "quantity",
        "occurred_at",
        "evidence_type",
        "status",
        "credited_g",
        "receipt",
        "idempotency_key",
        "submitted_at",
        "decided_at",
        "behaviour__code",
        "factor__version",
    )


class ClaimListCreateView(generics.ListAPIView):
    permission_classes = [IsResident]
    serializer_class = s.ClaimSerializer
    pagination_class = ClaimsNewestFirst
    throttle_scope = "claims"

    def get_queryset(self):
        return _claims_as_rendered(Claim.objects.owned_by(self.request.user))

    def get_throttles(self):
        if self.request.method == "POST":
            return [ScopedRateThrottle()]
        return super().get_throttles()

    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        request={
            "application/json": s.ClaimCreateSerializer,
            "multipart/form-data": s.ClaimCreateFormSerializer,
        },
        responses={201: s.ClaimSerializer, 200: s.ClaimSerializer},
    )
    def post(self, request):
        """JSON, or multipart with the same fields plus a `photo` file (evidence type photo;
        `evidence` then comes as a JSON string field, if at all)."""
        data = s.ClaimCreateSerializer(data=request_fields(request))
        data.is_valid(raise_exception=True)
        v = data.validated_data
        evidence = dict(v.get("evidence") or {})
        files = request_files(request)
        claim, created = claim_services.claim_submit(
            user=request.user,
            behaviour_code=v["behaviour"],
            quantity=v["quantity"],
            idempotency_key=str(v["idempotency_key"]),
            occurred_at=v.get("occurred_at"),
            evidence_type=str(evidence.get("type", "photo" if files else "self")),
            evidence=evidence,
            files=files,
        )
        return Response(
            s.ClaimSerializer(claim).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ClaimDetailView(generics.RetrieveAPIView):
    permission_classes = [IsResident]
    serializer_class = s.ClaimSerializer

    def get_queryset(self):
        return _claims_as_rendered(Claim.objects.owned_by(self.request.user))


class LedgerView(generics.ListAPIView):
    permission_classes = [IsResident]
    serializer_class = s.LedgerEntrySerializer
    pagination_class = LedgerNewestFirst

    def get_authenticators(self):
        # The account whose entries are paged, read with the user (a GET-only view).
        return authenticators_reading(super().get_authenticators(), account=True)

    def get_queryset(self):
        qs, self._account = ledger_entries_for_user(
            user=self.request.user, account=account_as_authenticated(self.request.user)
        )
        return qs

    def get_serializer_context(self):
        ctx = super().get_serializer_context()
        if not hasattr(self, "_account"):
            self.get_queryset()
        ctx["account_id"] = self._account.pk
        return ctx


class PartnerWhoAmIView(APIView):
    """Lets a partner check its signing setup: answers who the signature says it is."""

    authentication_classes = [PartnerSignatureAuthentication]
    permission_classes = [IsPartner]
    parser_classes = []

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "PartnerIdentity", {"partner": serializers.CharField(), "kind": serializers.CharField()}
        ),
    )
    def post(self, request):
        partner = request.user.partner
        return Response({"partner": partner.name, "kind": partner.kind})

    get = post
