"""The enterprise buyer's API, for a manager of a buyer's staff: buy whole tonnes from a pool
by card (the answer carries the PaymentIntent's client secret), see a purchase, download its
retirement certificate once completed."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from rewards.payments.services import payment_create_now
from rewards.payments.staff import IsPartnerManager
from rewards.pool.models import EnterpriseBuyer, Pool, PoolSale
from rewards.pool.services import pool_purchase_request


class IsBuyerManager(IsPartnerManager):
    message = _("Only a manager of an enterprise buyer's staff may buy pooled reductions.")

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        request.buyer = EnterpriseBuyer.objects.filter(
            partner=request.partner, is_active=True
        ).first()
        return request.buyer is not None


class PurchaseRequestSerializer(serializers.Serializer):
    pool = serializers.PrimaryKeyRelatedField(queryset=Pool.objects.filter(is_active=True))
    tonnes = serializers.IntegerField(min_value=1, max_value=2**31 - 1)


class PoolSaleSerializer(serializers.ModelSerializer):
    pool_name = serializers.CharField(source="pool.name")
    payment_status = serializers.CharField(source="payment.status")
    client_secret = serializers.SerializerMethodField()
    grams = serializers.IntegerField()
    certificate_number = serializers.CharField()

    class Meta:
        model = PoolSale
        fields = [
            "id",
            "pool",
            "pool_name",
            "tonnes",
            "grams",
            "price_fen_per_tonne",
            "amount_fen",
            "status",
            "payment_status",
            "client_secret",
            "certificate_number",
            "created_at",
            "completed_at",
        ]

    def get_client_secret(self, obj) -> str | None:
        return obj.payment.client_secret or None


class PoolPurchasesView(APIView):
    permission_classes = [IsBuyerManager]

    @extend_schema(
        request=PurchaseRequestSerializer,
        responses={
            201: PoolSaleSerializer,
            202: OpenApiResponse(
                PoolSaleSerializer,
                description="Stripe has not answered yet: client_secret is null; ask again.",
            ),
            400: OpenApiResponse(description="`invalid`, `pool_invalid_tonnes`."),
            409: OpenApiResponse(description="`pool_short`: the pool has not that many tonnes."),
            503: OpenApiResponse(description="`payments_not_configured`."),
        },
    )
    def post(self, request):
        """Buy whole tonnes of pooled reductions at the pool's published price."""
        data = PurchaseRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            sale = pool_purchase_request(
                pool=data.validated_data["pool"],
                buyer=request.buyer,
                tonnes=data.validated_data["tonnes"],
                requested_by=request.user,
                max_tonnes=settings.POOL_MAX_TONNES,
            )
        payment_create_now(payment_id=sale.payment_id)
        sale = PoolSale.objects.select_related("payment", "pool").get(pk=sale.pk)
        created = bool(sale.payment.client_secret)
        return Response(
            PoolSaleSerializer(sale).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_202_ACCEPTED,
        )


def _sale(request, pk: int) -> PoolSale:
    return get_object_or_404(
        PoolSale.objects.select_related("payment", "pool"), pk=pk, buyer=request.buyer
    )


class PoolPurchaseDetailView(APIView):
    permission_classes = [IsBuyerManager]

    @extend_schema(responses={200: PoolSaleSerializer})
    def get(self, request, pk: int):
        """One purchase of my enterprise (another's is not found)."""
        return Response(PoolSaleSerializer(_sale(request, pk)).data)


class PoolCertificateView(APIView):
    permission_classes = [IsBuyerManager]

    @extend_schema(
        responses={
            (200, "image/png"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="`not_found`: no such purchase, or not completed."),
        }
    )
    def get(self, request, pk: int):
        """The retirement certificate of a completed purchase, as a PNG."""
        sale = _sale(request, pk)
        if not sale.certificate_png:
            raise Http404
        response = HttpResponse(bytes(sale.certificate_png), content_type="image/png")
        response["Content-Disposition"] = f'inline; filename="{sale.certificate_number}.png"'
        return response
