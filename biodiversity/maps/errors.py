"""Refusals of the map slice (their codes are in carbon.errors.ErrorCode)."""

from carbon.errors import DomainError, ErrorCode


class InvalidBbox(DomainError):
    code = ErrorCode.INVALID_BBOX
