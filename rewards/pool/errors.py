"""The refusals of the pool slice; their codes and statuses are in carbon.errors."""

from carbon.errors import DomainError, ErrorCode


class InvalidTonnes(DomainError):
    code = ErrorCode.POOL_INVALID_TONNES


class PoolShort(DomainError):
    code = ErrorCode.POOL_SHORT
