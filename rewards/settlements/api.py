"""The merchant's statements: its settlements, newest period first (staff of the merchant)."""

from __future__ import annotations

from rest_framework import generics, serializers

from carbon.api.pagination import NewestFirst
from rewards.merchants.api import IsMerchantStaff
from rewards.settlements.models import Settlement


class SettlementSerializer(serializers.ModelSerializer):
    lines = serializers.IntegerField(source="lines.count")

    class Meta:
        model = Settlement
        fields = [
            "id",
            "period_start",
            "period_end",
            "amount_fen",
            "status",
            "transfer_id",
            "lines",
            "created_at",
            "paid_at",
        ]


class SettlementsNewestFirst(NewestFirst):
    pass


class MerchantSettlementsView(generics.ListAPIView):
    """My merchant's settlements: what was paid (or is being paid) for which period."""

    permission_classes = [IsMerchantStaff]
    serializer_class = SettlementSerializer
    pagination_class = SettlementsNewestFirst

    def get_queryset(self):
        return Settlement.objects.filter(merchant=self.request.merchant_staff.merchant)
