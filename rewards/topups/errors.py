"""The refusals of the top-up slice; their codes and statuses are in carbon.errors."""

from carbon.errors import DomainError, ErrorCode


class CardNotLinked(DomainError):
    code = ErrorCode.TOPUP_CARD_NOT_LINKED


class InvalidTopUpAmount(DomainError):
    code = ErrorCode.TOPUP_INVALID_AMOUNT


class OperatorUnavailable(DomainError):
    code = ErrorCode.TOPUP_OPERATOR_UNAVAILABLE


class HoldUnusable(DomainError):
    code = ErrorCode.TOPUP_HOLD_UNUSABLE


class NotRefundable(DomainError):
    code = ErrorCode.TOPUP_NOT_REFUNDABLE
