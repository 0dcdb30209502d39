"""The refusals of the settlements slice; their codes and statuses are in carbon.errors."""

from carbon.errors import DomainError, ErrorCode


class NoPayoutAccount(DomainError):
    code = ErrorCode.SETTLEMENT_NO_ACCOUNT
