"""The merchant API, for the staff of a merchant (logged in with the same tokens as
residents; residents are refused, 403): redeem a voucher at the till, the day's redemptions,
what the platform owes the merchant; a manager invites staff; an invited member sets a
password with the invitation's token. Thin: validate, call one service, render."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.api.pagination import NewestFirst
from rewards.merchants import serializers as s
from rewards.merchants.redemptions import (
    merchant_redeem,
    merchant_redemptions_on,
    merchant_summary,
)
from rewards.merchants.staff import staff_invitation_accept, staff_invite, staff_profile


class IsMerchantStaff(BasePermission):
    """Staff of an active merchant; the profile is kept on the request for the view."""

    message = _("Only the staff of a merchant may use the merchant API.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        request.merchant_staff = staff_profile(user=user)
        return request.merchant_staff is not None


class IsMerchantManager(IsMerchantStaff):
    message = _("Only a merchant's manager may invite staff.")

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and request.merchant_staff.is_manager


class RedemptionsNewestFirst(NewestFirst):
    pass


class MerchantRedemptionView(generics.ListAPIView):
    permission_classes = [IsMerchantStaff]
    serializer_class = s.RedemptionSerializer
    pagination_class = RedemptionsNewestFirst

    def get_queryset(self):
        data = s.RedemptionDaySerializer(data=self.request.query_params)
        data.is_valid(raise_exception=True)
        day = data.validated_data.get("date") or timezone.localdate()
        return merchant_redemptions_on(merchant=self.request.merchant_staff.merchant, day=day)

    @extend_schema(parameters=[s.RedemptionDaySerializer])
    def get(self, request, *args, **kwargs):
        """My merchant's redemptions of a day (today by default), newest first."""
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=s.RedeemSerializer,
        responses={
            201: s.RedemptionSerializer,
            400: OpenApiResponse(description="`invalid`, `qr_invalid` (forged or expired)."),
            404: OpenApiResponse(
                description="`voucher_not_found`: no voucher of my merchant has this code "
                "(another merchant's code is answered the same)."
            ),
            409: OpenApiResponse(
                description="`voucher_used`, `voucher_cancelled`, `voucher_expired`, "
                "`voucher_not_redeemable`."
            ),
        },
    )
    def post(self, request):
        """Redeem a voucher of my merchant from its code or QR payload: the resident's held
        grams are spent and the platform owes my merchant the offer's value."""
        data = s.RedeemSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        redemption = merchant_redeem(
            staff=request.user,
            merchant=request.merchant_staff.merchant,
            code=data.validated_data.get("code"),
            qr=data.validated_data.get("qr"),
        )
        return Response(s.RedemptionSerializer(redemption).data, status=status.HTTP_201_CREATED)


class MerchantSummaryView(APIView):
    permission_classes = [IsMerchantStaff]

    @extend_schema(responses=s.SummarySerializer)
    def get(self, request):
        """What the platform owes my merchant: in all, and not yet settled."""
        merchant = request.merchant_staff.merchant
        summary = merchant_summary(merchant=merchant)
        return Response(s.SummarySerializer({"merchant": merchant.name, **summary.__dict__}).data)


class StaffInviteView(APIView):
    permission_classes = [IsMerchantManager]

    @extend_schema(request=s.InviteSerializer, responses={201: s.InvitationSerializer})
    def post(self, request):
        """Invite a member to my merchant's staff: the answer carries a one-time token (shown
        once) with which they set a password. Inviting again replaces an unused token."""
        data = s.InviteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = staff_invite(
            merchant=request.merchant_staff.merchant,
            email=data.validated_data["email"],
            manager=data.validated_data["manager"],
            invited_by=request.user,
        )
        return Response(s.InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationAcceptView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        request=s.AcceptSerializer,
        responses={
            200: s.AcceptedSerializer,
            400: OpenApiResponse(
                description="`invitation_invalid` (unknown, used, replaced or expired), "
                "`invalid` (a password the validators refuse)."
            ),
        },
    )
    def post(self, request):
        """Set my password with the invitation's token; then log in at /api/v1/auth/token."""
        data = s.AcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = staff_invitation_accept(
            token=data.validated_data["token"], password=data.validated_data["password"]
        )
        return Response({"email": user.email})
