"""The rewards app's models live in its slices (offers/, vouchers/, merchants/, topups/,
offsets/)
with the `rewards` app label; importing them here registers them with Django."""

from rewards.merchants.models import MerchantRedemption, MerchantStaff, StaffInvitation
from rewards.offers.models import Offer, OfferKind, StockAdjustment
from rewards.offsets.models import BankProgramme, LoanLink, Offset, OffsetBatch
from rewards.topups.models import TopUp
from rewards.vouchers.models import Voucher, VoucherStatus

__all__ = [
    "BankProgramme",
    "LoanLink",
    "MerchantRedemption",
    "MerchantStaff",
    "Offer",
    "OfferKind",
    "Offset",
    "OffsetBatch",
    "StaffInvitation",
    "StockAdjustment",
    "TopUp",
    "Voucher",
    "VoucherStatus",
]
