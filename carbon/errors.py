"""Domain errors: each has a stable machine-readable code and an HTTP status for the API."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "domain_error"
    status = 400
    default_message = "The request could not be carried out."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"
    status = 409
    default_message = "This idempotency key was already used with a different request."


class InsufficientFunds(DomainError):
    code = "insufficient_balance"
    status = 409
    default_message = "Not enough available grams for this spend."


class PendingAlreadyResolved(DomainError):
    code = "pending_already_resolved"
    status = 409
    default_message = "This hold was already posted or voided."


class HoldExpired(DomainError):
    code = "hold_expired"
    status = 409
    default_message = "This hold timed out and was released; its grams are available again."


class NotPending(DomainError):
    code = "not_pending"
    status = 409
    default_message = "This transfer is not a pending hold."


class InvalidAmount(DomainError):
    code = "invalid_amount"
    status = 400
    default_message = "Amounts are positive whole grams."


class NothingToReverse(DomainError):
    code = "nothing_to_reverse"
    status = 409
    default_message = "Nothing is left to reverse on this transfer."


class UnknownBehaviour(DomainError):
    code = "unknown_behaviour"
    status = 400
    default_message = "No active behaviour has this code."


class InvalidQuantity(DomainError):
    code = "invalid_quantity"
    status = 400


class OutsideClaimWindow(DomainError):
    code = "outside_claim_window"
    status = 400


class EvidenceNotAccepted(DomainError):
    code = "evidence_not_accepted"
    status = 400


class InvalidSignature(DomainError):
    code = "invalid_signature"
    status = 401
    default_message = "The partner signature is missing, malformed, stale or wrong."


class ReplayedRequest(DomainError):
    code = "replayed_request"
    status = 409
    default_message = "This signed request was already received."


class InvalidReview(DomainError):
    code = "invalid_review"
    status = 409


class RowError(Exception):
    """One bad row of a partner batch (taps, events): reported in the per-row answer with a
    stable code, never raised out of the batch."""

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message
        super().__init__(message)
