"""Vouchers redeemed at a merchant: at a till by its staff (by the code or the QR payload),
or by an administrator on its behalf; the merchant's day of redemptions, what the platform
owes it, and marking lines settled. Each redemption posts the voucher's hold and records a
settlement line (who, when, the CNY owed) that no erasure touches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from carbon.models import Partner, User
from rewards.merchants.models import MerchantRedemption
from rewards.vouchers.codes import voucher_code_normalise, voucher_qr_verify
from rewards.vouchers.errors import VoucherNotFound
from rewards.vouchers.models import Voucher
from rewards.vouchers.services import voucher_for_merchant, voucher_use


def _redeem(
    *, voucher: Voucher, merchant: Partner, by: User, reason: str = ""
) -> MerchantRedemption:
    voucher_use(voucher=voucher)
    return MerchantRedemption.objects.create(
        voucher=voucher,
        merchant=merchant,
        redeemed_by=by,
        on_behalf_reason=reason[:300],
        value_cny=voucher.partner_value_cny,
    )


def merchant_redeem(
    *, staff: User, merchant: Partner, code: str | None = None, qr: str | None = None
) -> MerchantRedemption:
    """Redeem a voucher of `merchant` (the staff member's) from its typed code or its QR
    payload. Two tills scanning the same voucher at once: the voucher's row lock lets one
    through, the other finds it used (VoucherUsed)."""
    if qr is not None:
        code = voucher_qr_verify(payload=qr)
    normalised = voucher_code_normalise(code or "")
    if normalised is None:
        raise VoucherNotFound(details={"code": code})
    with transaction.atomic():
        voucher = voucher_for_merchant(code=normalised, merchant=merchant)
        return _redeem(voucher=voucher, merchant=merchant, by=staff)


def merchant_redeem_on_behalf(*, voucher_id, actor: User, reason: str) -> MerchantRedemption:
    """An administrator redeems a voucher for its merchant (a till that is down), with a
    reason; the same checks and the same settlement line as at a till."""
    if not reason.strip():
        raise ValueError("a reason is required")
    with transaction.atomic():
        voucher = (
            Voucher.objects.select_for_update(of=("self",))
            .select_related("offer", "partner")
            .filter(pk=voucher_id)
            .first()
        )
        if voucher is None:
            raise VoucherNotFound(details={"voucher": str(voucher_id)})
        return _redeem(voucher=voucher, merchant=voucher.partner, by=actor, reason=reason.strip())


def merchant_redemptions_on(*, merchant: Partner, day: date) -> QuerySet[MerchantRedemption]:
    """The merchant's redemptions of one day in the city's time zone."""
    start = timezone.make_aware(datetime.combine(day, time.min))
    return MerchantRedemption.objects.filter(
        merchant=merchant, created_at__gte=start, created_at__lt=start + timedelta(days=1)
    ).select_related("voucher__offer", "redeemed_by")


@dataclass(frozen=True)
class MerchantSummary:
    redemptions: int
    owed_cny: Decimal
    unsettled_redemptions: int
    unsettled_cny: Decimal
    today_redemptions: int


def merchant_summary(*, merchant: Partner) -> MerchantSummary:
    today = merchant_redemptions_on(merchant=merchant, day=timezone.localdate())
    totals = MerchantRedemption.objects.filter(merchant=merchant).aggregate(
        count=Count("pk"),
        owed=Sum("value_cny"),
        unsettled_count=Count("pk", filter=Q(settled_at__isnull=True)),
        unsettled=Sum("value_cny", filter=Q(settled_at__isnull=True)),
    )
    zero = Decimal("0.00")
    return MerchantSummary(
        redemptions=totals["count"],
        owed_cny=totals["owed"] or zero,
        unsettled_redemptions=totals["unsettled_count"],
        unsettled_cny=totals["unsettled"] or zero,
        today_redemptions=today.count(),
    )


def merchant_redemptions_settle(*, redemption_ids, at: datetime | None = None) -> int:
    """Mark redemptions as paid to their merchant; already settled ones stay as they were."""
    return MerchantRedemption.objects.filter(pk__in=redemption_ids, settled_at__isnull=True).update(
        settled_at=at or timezone.now()
    )
