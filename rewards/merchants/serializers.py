"""What the merchant API reads and answers: a code or QR payload from the till, redemptions,
the merchant's summary, staff invitations."""

from __future__ import annotations

from datetime import date

from django.utils.translation import gettext as _
from rest_framework import serializers

from rewards.offers.models import OfferKind

# Days a merchant can ask about: the platform's lifetime, with room; outside it no day exists
# that a time zone conversion could not overflow.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


class RedeemSerializer(serializers.Serializer):
    code = serializers.CharField(required=False, max_length=40, help_text="As typed at the till.")
    qr = serializers.CharField(required=False, max_length=500, help_text="The scanned payload.")

    def validate(self, attrs):
        if ("code" in attrs) == ("qr" in attrs):
            raise serializers.ValidationError(_("Send either `code` or `qr`."))
        return attrs


class RedemptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    voucher = serializers.UUIDField(source="voucher_id")
    code = serializers.CharField(source="voucher.code")
    offer = serializers.CharField(source="voucher.offer.title")
    kind = serializers.ChoiceField(source="voucher.offer.kind", choices=OfferKind.choices)
    value_cny = serializers.DecimalField(max_digits=10, decimal_places=2)
    redeemed_at = serializers.DateTimeField(source="created_at")
    redeemed_by = serializers.EmailField(source="redeemed_by.email")
    settled = serializers.SerializerMethodField()

    def get_settled(self, redemption) -> bool:
        return redemption.settled_at is not None


class RedemptionDaySerializer(serializers.Serializer):
    date = serializers.DateField(
        required=False, help_text="A day in the city's time zone; today by default."
    )

    def validate_date(self, value):
        if not FIRST_DAY <= value <= LAST_DAY:
            raise serializers.ValidationError(_("Not a day this platform has seen."))
        return value


class SummarySerializer(serializers.Serializer):
    merchant = serializers.CharField()
    redemptions = serializers.IntegerField()
    owed_cny = serializers.DecimalField(max_digits=14, decimal_places=2)
    unsettled_redemptions = serializers.IntegerField()
    unsettled_cny = serializers.DecimalField(max_digits=14, decimal_places=2)
    today_redemptions = serializers.IntegerField()


class InviteSerializer(serializers.Serializer):
    email = serializers.EmailField()
    manager = serializers.BooleanField(default=False)


class InvitationSerializer(serializers.Serializer):
    email = serializers.EmailField(source="staff.user.email")
    manager = serializers.BooleanField(source="staff.is_manager")
    token = serializers.CharField(
        help_text="One-time; give it to the new member to set a password."
    )
    expires_at = serializers.DateTimeField()


class AcceptSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=100)
    password = serializers.CharField(max_length=128, style={"input_type": "password"})


class AcceptedSerializer(serializers.Serializer):
    email = serializers.EmailField()
