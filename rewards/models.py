"""The rewards app's models live in its slices (offers/, vouchers/, merchants/, topups/,
offsets/)
with the `rewards` app label; importing them here registers them with Django."""

from rewards.merchants.models import MerchantRedemption, MerchantStaff, StaffInvitation
from rewards.offers.models import Offer, OfferKind, StockAdjustment
from rewards.offsets.models import BankProgramme, LoanLink, Offset, OffsetBatch
from rewards.payments.models import Payment, PaymentRefund, StripeRequest, WebhookEvent
from rewards.pool.models import EnterpriseBuyer, Pool, PoolSale
from rewards.settlements.models import PayoutAccount, Settlement, SettlementLine
from rewards.sponsorships.models import Sponsor, Sponsorship
from rewards.topups.models import TopUp
from rewards.vouchers.models import Voucher, VoucherStatus

__all__ = [
    "EnterpriseBuyer",
    "Payment",
    "PaymentRefund",
    "PayoutAccount",
    "Pool",
    "PoolSale",
    "Settlement",
    "SettlementLine",
    "Sponsor",
    "Sponsorship",
    "StripeRequest",
    "WebhookEvent",
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
