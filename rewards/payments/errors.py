"""The refusals of the payments slice; their codes and statuses are in carbon.errors."""

from carbon.errors import DomainError, ErrorCode


class PaymentsNotConfigured(DomainError):
    code = ErrorCode.PAYMENTS_NOT_CONFIGURED


class WebhookSignatureInvalid(DomainError):
    code = ErrorCode.WEBHOOK_SIGNATURE_INVALID


class NotRefundable(DomainError):
    code = ErrorCode.PAYMENT_NOT_REFUNDABLE
