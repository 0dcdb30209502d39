"""Refusals of the vouchers slice (their codes are in carbon.errors.ErrorCode)."""

from carbon.errors import DomainError, ErrorCode


class LimitReached(DomainError):
    code = ErrorCode.LIMIT_REACHED


class VoucherNotFound(DomainError):
    code = ErrorCode.VOUCHER_NOT_FOUND


class VoucherUsed(DomainError):
    code = ErrorCode.VOUCHER_USED


class VoucherCancelled(DomainError):
    code = ErrorCode.VOUCHER_CANCELLED


class VoucherExpired(DomainError):
    code = ErrorCode.VOUCHER_EXPIRED


class VoucherNotRedeemable(DomainError):
    code = ErrorCode.VOUCHER_NOT_REDEEMABLE


class QrInvalid(DomainError):
    code = ErrorCode.QR_INVALID


class NotCancellable(DomainError):
    code = ErrorCode.NOT_CANCELLABLE


class TopupCardRequired(DomainError):
    code = ErrorCode.TOPUP_CARD_REQUIRED
