"""Refusals of the offers slice (their codes are in carbon.errors.ErrorCode)."""

from carbon.errors import DomainError, ErrorCode


class OfferNotFound(DomainError):
    code = ErrorCode.OFFER_NOT_FOUND


class OfferInactive(DomainError):
    code = ErrorCode.OFFER_INACTIVE


class OutOfStock(DomainError):
    code = ErrorCode.OUT_OF_STOCK


class InvalidStockChange(DomainError):
    code = ErrorCode.INVALID_STOCK_CHANGE
