"""Request validation and response shapes. No business rules here: services decide."""

from __future__ import annotations

import copy

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from carbon.api.parsing import NUL, json_strings_match
from carbon.models import Behaviour, Claim, Consent, EmissionFactor, Transfer, User
from carbon.services import sessions
from carbon.services.ledger import hold_status, signed_amount


class ModelSerializer(serializers.ModelSerializer):
    """DRF's ModelSerializer, its fields built from the model once per class.

    DRF derives a ModelSerializer's fields from the model's metadata for every instance:
    about 0.3 ms of CPU for a claim's thirteen fields, in every response that renders one
    object. The result depends only on the class (its Meta and declared fields), never on
    the instance or its context, so it is built on first use and each instance gets a deep
    copy of it: the copy DRF makes of declared fields anyway."""

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built_once")
        if built is None:  # two threads may both build it: equal results, either is kept
            built = super().get_fields()
            cls._fields_built_once = built
        return copy.deepcopy(built)


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        write_only=True, min_length=8, max_length=128, trim_whitespace=False
    )
    display_name = serializers.CharField(max_length=80)
    community = serializers.SlugField(required=False, allow_blank=True)


class LoginLockedOut(Throttled):
    default_detail = _("Too many failed logins for this account or from this address.")


class LoginSerializer(TokenObtainPairSerializer):
    """Addresses are stored lowercased at registration; match the address however it is typed.
    A login starts a session (a refresh-token family, carbon.services.sessions)."""

    def validate(self, attrs):
        email = attrs[self.username_field]
        attrs[self.username_field] = User.objects.normalize_email(email).lower()
        try:
            return super().validate(attrs)
        except AuthenticationFailed:
            # django-axes flags the request when this account or this client has failed too
            # often: then even the right password waits for the cool-off.
            if getattr(self.context.get("request"), "axes_locked_out", False):
                raise LoginLockedOut(wait=settings.AXES_COOLOFF_TIME.total_seconds()) from None
            raise

    @classmethod
    def get_token(cls, user):
        return sessions.session_start(user=user)


class RefreshSerializer(serializers.Serializer):
    """Rotates a refresh token; a reused one ends its whole session (see sessions)."""

    refresh = serializers.CharField()
    access = serializers.CharField(read_only=True)

    def validate(self, attrs):
        try:
            token = sessions.session_refresh(refresh=attrs["refresh"])
        except sessions.RefreshRefused as refused:
            raise InvalidToken(refused.message, code=refused.reason) from None
        return {"access": str(token.access_token), "refresh": str(token)}


class ExpirySerializer(serializers.Serializer):
    date = serializers.DateField()
    grams = serializers.IntegerField()


class BalanceSerializer(serializers.Serializer):
    available_g = serializers.IntegerField()
    pending_g = serializers.IntegerField()
    lifetime_g = serializers.IntegerField()
    expiring_30d_g = serializers.IntegerField(source="expiring_soon_g")
    expiring_until = serializers.DateTimeField(source="expiring_soon_until")
    next_expiries = ExpirySerializer(many=True)


class MeSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    email = serializers.EmailField()
    display_name = serializers.CharField()
    role = serializers.CharField()
    community = serializers.CharField(source="community.code", default=None, read_only=True)
    district = serializers.CharField(source="district.code", default=None, read_only=True)
    date_joined = serializers.DateTimeField()


class MeWithBalanceSerializer(MeSerializer, BalanceSerializer):
    """The schema of what GET and PATCH /me answer: my profile and my balance."""


class MeUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=80, required=False)
    community = serializers.SlugField(required=False)


class DeleteAccountSerializer(serializers.Serializer):
    password = serializers.CharField(write_only=True, trim_whitespace=False)


class FactorSerializer(ModelSerializer):
    district = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = EmissionFactor
        fields = [
            "id",
            "version",
            "district",
            "grams_per_unit",
            "unit",
            "valid_from",
            "valid_to",
            "methodology",
            "source",
        ]


class BehaviourSerializer(ModelSerializer):
    current_factors = serializers.SerializerMethodField()

    class Meta:
        model = Behaviour
        fields = [
            "code",
            "name",
            "description",
            "category",
            "unit",
            "evidence_types",
            "consent_scope",
            "max_quantity",
            "per_action_cap_g",
            "daily_cap_g",
            "monthly_cap_g",
            "claim_window_days",
            "credit_lifetime_days",
            "current_factors",
        ]

    def get_current_factors(self, obj) -> list[dict]:
        now = timezone.now()
        factors = [
            f
            for f in obj.factors.all()
            if f.valid_from <= now and (f.valid_to is None or f.valid_to > now)
        ]
        return FactorSerializer(factors, many=True).data


class AwareDateTimeField(serializers.DateTimeField):
    """A time of an act must say its offset: a phone abroad or off-zone would otherwise be
    read as city time and land on the wrong day for caps and windows."""

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)

    default_error_messages = {
        **serializers.DateTimeField.default_error_messages,
        "naive": _("Give a time zone offset, e.g. 2026-11-28T08:30:00+08:00."),
    }


class ClaimCreateSerializer(serializers.Serializer):
    behaviour = serializers.SlugField(max_length=64)
    quantity = serializers.DecimalField(max_digits=30, decimal_places=10, coerce_to_string=False)
    idempotency_key = serializers.UUIDField(format="hex_verbose")
    occurred_at = AwareDateTimeField(required=False)
    evidence = serializers.DictField(required=False, default=dict)

    def validate_evidence(self, value):
        if len(str(value)) > 4000:
            raise serializers.ValidationError(_("Evidence is too large."))
        if json_strings_match(value, NUL):  # stored as jsonb, which holds no NUL
            raise serializers.ValidationError(_("Evidence may not contain NUL characters."))
        return value


class ClaimCreateFormSerializer(ClaimCreateSerializer):
    """The multipart form of a claim (documentation): the same fields, `evidence` as a JSON
    string, and the photo itself."""

    evidence = serializers.CharField(required=False, help_text="A JSON object, as text.")
    photo = serializers.FileField(
        required=False, help_text="JPEG, PNG, WebP or HEIC; evidence type photo."
    )


class ClaimSerializer(ModelSerializer):
    behaviour = serializers.SlugRelatedField(slug_field="code", read_only=True)
    factor_version = serializers.IntegerField(source="factor.version", default=None, read_only=True)

    class Meta:
        model = Claim
        fields = [
            "id",
            "behaviour",
            "quantity",
            "occurred_at",
            "evidence_type",
            "status",
            "credited_g",
            "factor_version",
            "receipt",
            "idempotency_key",
            "submitted_at",
            "decided_at",
        ]


class ConsentSerializer(ModelSerializer):
    class Meta:
        model = Consent
        fields = ["scope", "granted_at", "revoked_at"]


class LedgerEntrySerializer(ModelSerializer):
    amount_g = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()

    class Meta:
        model = Transfer
        fields = [
            "id",
            "created_at",
            "code",
            "flag",
            "status",
            "amount_g",
            "category",
            "description",
            "reference",
        ]

    def get_amount_g(self, obj) -> int:
        """Signed from the resident's side: credits positive, debits negative."""
        account_id = self.context["account_id"]
        return signed_amount(obj, account_id=account_id)

    def get_status(self, obj) -> str:
        return hold_status(obj)
