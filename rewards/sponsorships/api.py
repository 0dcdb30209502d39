"""The sponsor's API, for a manager of a sponsor's staff: fund the budget by card (the answer
carries the PaymentIntent's client secret, to confirm with Stripe.js), and see a funding."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from rewards.payments.services import payment_create_now
from rewards.payments.staff import IsPartnerManager
from rewards.sponsorships.models import Sponsor, Sponsorship
from rewards.sponsorships.services import sponsorship_request


class IsSponsorManager(IsPartnerManager):
    message = _("Only a manager of a sponsor's staff may fund its budget.")

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        request.sponsor = Sponsor.objects.filter(partner=request.partner, is_active=True).first()
        return request.sponsor is not None


class SponsorshipRequestSerializer(serializers.Serializer):
    amount_fen = serializers.IntegerField(min_value=1, max_value=2**53)


class SponsorshipSerializer(serializers.ModelSerializer):
    payment_status = serializers.CharField(source="payment.status")
    client_secret = serializers.SerializerMethodField()
    budget_fen = serializers.IntegerField(source="sponsor.budget_fen")

    class Meta:
        model = Sponsorship
        fields = [
            "id",
            "amount_fen",
            "status",
            "payment_status",
            "client_secret",
            "refunded_fen",
            "budget_fen",
            "created_at",
            "credited_at",
        ]

    def get_client_secret(self, obj) -> str | None:
        return obj.payment.client_secret or None


_503 = OpenApiResponse(description="`payments_not_configured`: no Stripe on this server.")


class SponsorshipsView(APIView):
    permission_classes = [IsSponsorManager]

    @extend_schema(
        request=SponsorshipRequestSerializer,
        responses={
            201: SponsorshipSerializer,
            202: OpenApiResponse(
                SponsorshipSerializer,
                description="Stripe has not answered yet: client_secret is null; ask again.",
            ),
            400: OpenApiResponse(description="`invalid`, `sponsorship_invalid_amount`."),
            503: _503,
        },
    )
    def post(self, request):
        """Fund my sponsor's budget by card: the budget is credited when Stripe confirms."""
        data = SponsorshipRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            sponsorship = sponsorship_request(
                sponsor=request.sponsor,
                amount_fen=data.validated_data["amount_fen"],
                requested_by=request.user,
            )
        # After the commit, outside any transaction: no lock is held while Stripe answers.
        payment_create_now(payment_id=sponsorship.payment_id)
        sponsorship.refresh_from_db()
        sponsorship.payment.refresh_from_db()
        created = bool(sponsorship.payment.client_secret)
        return Response(
            SponsorshipSerializer(sponsorship).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_202_ACCEPTED,
        )


class SponsorshipDetailView(APIView):
    permission_classes = [IsSponsorManager]

    @extend_schema(responses={200: SponsorshipSerializer})
    def get(self, request, pk: int):
        """One funding of my sponsor's budget (another sponsor's is not found)."""
        sponsorship = get_object_or_404(
            Sponsorship.objects.select_related("payment", "sponsor"), pk=pk, sponsor=request.sponsor
        )
        return Response(SponsorshipSerializer(sponsorship).data)
