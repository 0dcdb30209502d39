"""What the resident's rewards API reads and answers: offers as the caller sees them, the
redemption request, and vouchers."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from rewards.offers.models import OfferKind
from rewards.vouchers.codes import voucher_qr_payload
from rewards.vouchers.limits import remaining_of_annotated
from rewards.vouchers.models import VoucherStatus

MAX_ID = 2**63 - 1


class PartnerRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class OfferFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=OfferKind.choices, required=False)
    partner = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    affordable = serializers.BooleanField(
        required=False, default=False, help_text=_("Only offers I can afford now.")
    )


class OfferSerializer(serializers.Serializer):
    """An offer as the caller sees it: what is left, what they may still redeem, whether
    their available grams cover it."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=OfferKind.choices)
    title = serializers.CharField()
    terms = serializers.CharField()
    price_g = serializers.IntegerField()
    stock_left = serializers.IntegerField()
    remaining_limit = serializers.SerializerMethodField(
        help_text="How many more I may redeem now under the tightest of the offer's limits "
        "(per day, month, lifetime); null: no limit."
    )
    can_afford = serializers.SerializerMethodField()
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(default=None)
    voucher_lifetime_days = serializers.SerializerMethodField()
    refund_on_expiry = serializers.BooleanField()
    partner = PartnerRefSerializer()
    donation_project = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()

    def get_remaining_limit(self, offer) -> int | None:
        return remaining_of_annotated(offer)

    def get_can_afford(self, offer) -> bool:
        return offer.price_g <= self.context["available_g"]

    def get_voucher_lifetime_days(self, offer) -> float:
        return round(offer.voucher_lifetime.total_seconds() / 86400, 2)

    def get_donation_project(self, offer) -> str | None:
        return offer.donation_project or None

    def get_image_url(self, offer) -> str | None:
        if not offer.image:
            return None
        return self.context["request"].build_absolute_uri(
            reverse("rewards:offer-image", args=[offer.pk])
        )


class RedemptionSerializer(serializers.Serializer):
    offer = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    idempotency_key = serializers.UUIDField(format="hex_verbose")
    card_number = serializers.CharField(
        max_length=40,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="Transit top-ups only: the number of one of my linked transit cards, to top "
        "up. Sent to the operator and forgotten once the top-up is settled.",
    )


class VoucherOfferSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=OfferKind.choices)
    title = serializers.CharField()


class VoucherSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    offer = VoucherOfferSerializer()
    partner = PartnerRefSerializer()
    status = serializers.ChoiceField(choices=VoucherStatus.choices)
    price_g = serializers.IntegerField()
    code = serializers.SerializerMethodField(help_text="Only while the voucher is usable.")
    qr = serializers.SerializerMethodField(
        help_text="The signed payload to show as a QR code; only while the voucher is usable."
    )
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(default=None)
    refunded = serializers.BooleanField()
    certificate_url = serializers.SerializerMethodField()

    def get_code(self, voucher) -> str | None:
        return voucher.code if voucher.is_usable else None

    def get_qr(self, voucher) -> str | None:
        if not voucher.is_usable:
            return None
        return voucher_qr_payload(code=voucher.code, expires_at=voucher.expires_at)

    def get_certificate_url(self, voucher) -> str | None:
        if voucher.offer.kind != OfferKind.DONATION:
            return None
        return self.context["request"].build_absolute_uri(
            reverse("rewards:voucher-certificate", args=[voucher.pk])
        )


class VoucherFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=VoucherStatus.choices, required=False)
