"""The resident's rewards API: the offers as the caller sees them (what is left, what they
may still redeem and afford), redeeming one, their vouchers, cancelling one, and a
donation's certificate. Residents only: merchant staff and others are refused (403
residents_only, the core's IsResident).
Served here rather than in the offers slice because the caller's limits are counted from
their vouchers. Thin: validate, call one service, render."""

from __future__ import annotations

import logging

from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.api.pagination import NewestFirst
from carbon.api.permissions import IsResident
from carbon.services.ledger import balance_for_user
from rewards.offers.models import Offer
from rewards.vouchers import serializers as s
from rewards.vouchers.limits import offers_with_usage
from rewards.vouchers.models import Voucher
from rewards.vouchers.services import voucher_cancel, voucher_certificate, voucher_issue

log = logging.getLogger(__name__)


class OffersNewestFirst(NewestFirst):
    pass


class OfferListView(generics.ListAPIView):
    """Offers on sale now, with what is left, what I may still redeem and whether I can
    afford each; filter by `kind`, `partner` (id) or `affordable=true`."""

    permission_classes = [IsResident]
    serializer_class = s.OfferSerializer
    pagination_class = OffersNewestFirst

    def _filters(self) -> dict:
        if not hasattr(self, "_validated_filters"):
            data = s.OfferFilterSerializer(data=self.request.query_params)
            data.is_valid(raise_exception=True)
            self._validated_filters = data.validated_data
        return self._validated_filters

    def _available_g(self) -> int:
        if not hasattr(self, "_available"):
            self._available = balance_for_user(user=self.request.user).available_g
        return self._available

    def get_queryset(self):
        filters = self._filters()
        offers = Offer.objects.available().select_related("partner")
        if "kind" in filters:
            offers = offers.filter(kind=filters["kind"])
        if "partner" in filters:
            offers = offers.filter(partner_id=filters["partner"])
        if filters.get("affordable"):
            offers = offers.filter(price_g__lte=self._available_g())
        return offers_with_usage(user=self.request.user, offers=offers, now=timezone.now())

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "available_g": self._available_g()}

    @extend_schema(parameters=[s.OfferFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RedemptionView(APIView):
    permission_classes = [IsResident]

    @extend_schema(
        request=s.RedemptionSerializer,
        responses={
            201: s.VoucherSerializer,
            200: OpenApiResponse(
                s.VoucherSerializer, description="A retry: the voucher this key already issued."
            ),
            400: OpenApiResponse(
                description="`invalid`, `topup_card_required` (a transit top-up names the "
                "card to top up), `invalid_card_number`, `topup_invalid_amount`."
            ),
            404: OpenApiResponse(description="`offer_not_found`."),
            409: OpenApiResponse(
                description="`offer_inactive`, `out_of_stock`, `limit_reached`, "
                "`insufficient_balance`, `idempotency_conflict` (the key was used for another "
                "offer), `account_closed`, `topup_card_not_linked`, `topup_hold_unusable`."
            ),
            503: OpenApiResponse(
                description="`topup_operator_unavailable`: the offer's transit operator cannot "
                "take top-ups now; nothing was held."
            ),
        },
    )
    def post(self, request):
        """Redeem an offer: hold its price from my grams and issue a voucher (a code and a
        signed QR payload). A donation is final at once; a transit top-up is `processing`
        until the operator confirms. Retrying with the same key answers the same voucher."""
        data = s.RedemptionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        voucher, created = voucher_issue(
            user=request.user,
            offer_id=data.validated_data["offer"],
            idempotency_key=str(data.validated_data["idempotency_key"]),
            card_number=data.validated_data.get("card_number") or None,
        )
        voucher = Voucher.objects.select_related("offer", "partner").get(pk=voucher.pk)
        return Response(
            s.VoucherSerializer(voucher, context={"request": request}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class VoucherListView(generics.ListAPIView):
    """My vouchers, newest first, with their status; the code and QR payload only while a
    voucher is usable. Filter by `status`."""

    permission_classes = [IsResident]
    serializer_class = s.VoucherSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        data = s.VoucherFilterSerializer(data=self.request.query_params)
        data.is_valid(raise_exception=True)
        vouchers = Voucher.objects.owned_by(self.request.user).select_related("offer", "partner")
        if "status" in data.validated_data:
            vouchers = vouchers.filter(status=data.validated_data["status"])
        return vouchers

    @extend_schema(parameters=[s.VoucherFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class VoucherCancelView(APIView):
    permission_classes = [IsResident]

    @extend_schema(
        request=None,
        responses={
            200: s.VoucherSerializer,
            409: OpenApiResponse(
                description="`not_cancellable` (used, expired, being fulfilled or final), "
                "`voucher_expired`, `account_closed`."
            ),
        },
    )
    def post(self, request, pk):
        """Cancel one of my unused vouchers: the grams come back, the unit goes back on sale.
        Cancelling it again answers the cancelled voucher."""
        voucher = voucher_cancel(user=request.user, voucher_id=pk)
        voucher = Voucher.objects.select_related("offer", "partner").get(pk=voucher.pk)
        return Response(s.VoucherSerializer(voucher, context={"request": request}).data)


class VoucherCertificateView(APIView):
    """The certificate of one of my donations, a PNG (drawn on first request)."""

    permission_classes = [IsResident]

    def perform_content_negotiation(self, request, force=False):
        # A browser or app asks for image/*; the JSON renderer is still the one for errors.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="PNG"),
            404: OpenApiResponse(description="Not one of my donations."),
        },
    )
    def get(self, request, pk):
        voucher = voucher_certificate(user=request.user, voucher_id=pk)
        try:
            handle = voucher.certificate.open("rb")
        except OSError:
            log.error("certificate file missing for voucher %s", pk)
            raise NotFound() from None
        response = FileResponse(handle, content_type="image/png")
        response["Content-Disposition"] = f'inline; filename="donation-{pk}.png"'
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response
