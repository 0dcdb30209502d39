"""Refusals of the cells slice (their codes are in carbon.errors.ErrorCode)."""

from carbon.errors import DomainError, ErrorCode


class CellNotFound(DomainError):
    code = ErrorCode.CELL_NOT_FOUND


class CellTransitionNotAllowed(DomainError):
    code = ErrorCode.CELL_TRANSITION_NOT_ALLOWED


class CellNotInNotice(DomainError):
    code = ErrorCode.CELL_NOT_IN_NOTICE


class ObjectionExists(DomainError):
    code = ErrorCode.OBJECTION_EXISTS


class UnknownIndicator(DomainError):
    code = ErrorCode.UNKNOWN_INDICATOR


class CellNotUpdatable(DomainError):
    code = ErrorCode.CELL_NOT_UPDATABLE


class ReasonRequired(DomainError):
    code = ErrorCode.INVALID
