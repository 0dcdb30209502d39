"""Refusals of the merchants slice (their codes are in carbon.errors.ErrorCode)."""

from carbon.errors import DomainError, ErrorCode


class InvitationInvalid(DomainError):
    code = ErrorCode.INVITATION_INVALID


class NotAMerchant(DomainError):
    """Staff are invited to merchants only (an operator, a bank or a platform has none)."""

    code = ErrorCode.UNKNOWN_PARTNER
