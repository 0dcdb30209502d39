"""The merchants slice's personal data: a staff member's profile and invitations, and the
redemptions recorded at the till. Redemptions are the merchant's settlement lines: no
erasure touches them. A resident's reach them only through the voucher, which the vouchers
slice unlinks (and exports, with where and when it was redeemed); a staff member's keep
pointing at the anonymised user row."""

from __future__ import annotations

from typing import Any

from carbon.models import User
from carbon.personal_data import PersonalData
from rewards.merchants.models import MerchantRedemption, MerchantStaff, StaffInvitation


def merchant_staff_export(*, user: User) -> dict[str, Any] | None:
    profile = MerchantStaff.objects.select_related("merchant").filter(user=user).first()
    if profile is None:
        return None
    return {
        "merchant": profile.merchant.name,
        "manager": profile.is_manager,
        "since": profile.created_at.isoformat(),
        "invitations": [
            {
                "created_at": i.created_at.isoformat(),
                "used_at": i.used_at.isoformat() if i.used_at else None,
            }
            for i in profile.invitations.order_by("created_at")
        ],
        "redemptions_recorded": MerchantRedemption.objects.filter(redeemed_by=user).count(),
    }


def merchant_staff_erase(*, user: User) -> None:
    StaffInvitation.objects.filter(staff__user=user).delete()
    MerchantStaff.objects.filter(user=user).delete()


PROVIDERS = (
    PersonalData(
        "merchant_staff",
        (MerchantStaff, StaffInvitation, MerchantRedemption),
        merchant_staff_export,
        merchant_staff_erase,
    ),
)
