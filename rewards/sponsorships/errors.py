"""The refusals of the sponsorships slice; their codes and statuses are in carbon.errors."""

from carbon.errors import DomainError, ErrorCode


class InvalidSponsorshipAmount(DomainError):
    code = ErrorCode.SPONSORSHIP_INVALID_AMOUNT
