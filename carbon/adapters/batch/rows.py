"""What a partner batch answers: one status and one code per row, the batch's counts, the
size limit, and the rule that tells a harmless resend from a conflicting one. Shared by every
signed feed (transit taps, partner events; later the bank's confirmations and recycling
records)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sized
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.utils.translation import gettext as _

from carbon.errors import DomainError, ErrorCode, RowError

__all__ = [
    "BatchReport",
    "BatchTooLarge",
    "RowCode",
    "RowError",
    "RowResult",
    "RowStatus",
    "batch_size_check",
    "payload_hash",
    "row_duplicate_or_conflict",
]


class RowStatus(StrEnum):
    ACCEPTED = "accepted"  # stored now
    DUPLICATE = "duplicate"  # stored before with the same content: nothing new
    ERROR = "error"  # refused, with a code


class RowCode(StrEnum):
    """Every code a batch row can be refused with. The strings are a contract with partners.

    A row reports the first check it fails, so the order checks run in is the precedence
    (TigerBeetle answers a batch of transfers the same way): the row's shape, then its fields
    in the order its model declares them, then the feed's checks against the database, then
    storing it. The list follows that order, feed by feed.
    """

    # The row's shape (both feeds).
    MALFORMED_ROW = "malformed_row"  # not a JSON object; unknown fields in a tap; bad event ids
    # A tap's fields.
    INVALID_RECORD_ID = "invalid_record_id"
    INVALID_CARD_HASH = "invalid_card_hash"
    INVALID_MODE = "invalid_mode"
    INVALID_DIRECTION = "invalid_direction"
    INVALID_TIME = "invalid_time"  # also an event's occurred_at
    TIME_WITHOUT_OFFSET = "time_without_offset"
    TIME_IN_FUTURE = "time_in_future"
    TIME_TOO_OLD = "time_too_old"
    # A tap against the network.
    UNKNOWN_STATION = "unknown_station"
    MODE_MISMATCH = "mode_mismatch"
    UNKNOWN_LINE = "unknown_line"
    STATION_NOT_ON_LINE = "station_not_on_line"
    NOT_YOUR_LINE = "not_your_line"
    LINE_REQUIRED = "line_required"
    NOT_YOUR_STATION = "not_your_station"  # named line or not, the sender must serve it
    # An event against its partner and behaviour.
    BEHAVIOUR_NOT_ALLOWED = "behaviour_not_allowed"
    OUTSIDE_CLAIM_WINDOW = "outside_claim_window"
    INVALID_FIELD = "invalid_field"  # a behaviour's own fields
    IMPOSSIBLE_SPEED = "impossible_speed"
    INVALID_QUANTITY = "invalid_quantity"
    # The claim rules refusing an event's claim (passed through with their own code).
    EVIDENCE_NOT_ACCEPTED = "evidence_not_accepted"
    UNKNOWN_BEHAVIOUR = "unknown_behaviour"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    # A bank's confirmation of an offset (rewards/offsets) against what we sent it.
    UNKNOWN_OFFSET = "unknown_offset"  # no offset of this bank has the id
    OFFSET_NOT_SENT = "offset_not_sent"  # not in a batch the bank accepted yet
    AMOUNT_MISMATCH = "amount_mismatch"  # grams or value other than requested
    OFFSET_RESOLVED = "offset_resolved"  # already confirmed or refused the other way
    OFFSET_EXPIRED = "offset_expired"  # the bank answered after the confirmation window
    # Storing the row (both feeds).
    RECORD_CONFLICT = "record_conflict"  # the id was stored before with other content
    NOT_STORED = "not_stored"


@dataclass(slots=True)
class RowResult:
    """One row's answer. `row_id` is the partner's id of the row, as far as it could be read;
    each feed names it in the answer (record_id for taps, event_id for events)."""

    index: int
    row_id: str | None
    status: RowStatus
    code: RowCode | None = None
    message: str = ""
    extra: dict[str, Any] | None = None  # a feed's own fields, e.g. an event's claim_status

    @classmethod
    def refused(cls, index: int, row_id: str | None, exc: RowError) -> RowResult:
        return cls(index, row_id, RowStatus.ERROR, RowCode(exc.code), exc.message)

    @classmethod
    def refused_by(cls, index: int, row_id: str | None, exc: DomainError) -> RowResult:
        """A row a service the feed calls refused (the claim rules, say): its code if the
        list has it, else not_stored."""
        code = RowCode._value2member_map_.get(exc.code, RowCode.NOT_STORED)
        return cls(index, row_id, RowStatus.ERROR, RowCode(code), exc.message)

    def as_dict(self, id_field: str) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, id_field: self.row_id, "status": self.status}
        if self.code:
            out["code"], out["message"] = self.code, self.message
        if self.extra:
            out.update(self.extra)
        return out


@dataclass
class BatchReport:
    """The answer to one batch: every row in the order sent, and the counts."""

    id_field: str
    rows: list[RowResult]

    def count(self, status: RowStatus) -> int:
        return sum(1 for r in self.rows if r.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": len(self.rows),
            "accepted": self.count(RowStatus.ACCEPTED),
            "duplicate": self.count(RowStatus.DUPLICATE),
            "error": self.count(RowStatus.ERROR),
            "rows": [r.as_dict(self.id_field) for r in self.rows],
        }


class BatchTooLarge(DomainError):
    code = ErrorCode.BATCH_TOO_LARGE


def batch_size_check(*, rows: Sized, limit: int, noun: str) -> None:
    """A batch over the limit is refused whole, before any row is read. `noun` names the
    rows, counted, in the request's language (`pgettext("batch rows", "taps")`)."""
    if len(rows) > limit:
        raise BatchTooLarge(
            _("A batch holds at most %(limit)d %(noun)s.") % {"limit": limit, "noun": noun},
            details={"max": limit, "received": len(rows)},
        )


def payload_hash(canonical: Any) -> str:
    """The fingerprint a row is stored with: SHA-256 of its canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


def row_duplicate_or_conflict(
    *,
    index: int,
    row_id: str,
    id_field: str,
    row_hash: str,
    stored_hash: str,
    extra: dict[str, Any] | None = None,
) -> RowResult:
    """A row whose id is already stored: with the same fingerprint it is a harmless resend,
    with another it is refused (what was stored first stands)."""
    if row_hash == stored_hash:
        return RowResult(index, row_id, RowStatus.DUPLICATE, extra=extra)
    return RowResult(
        index,
        row_id,
        RowStatus.ERROR,
        RowCode.RECORD_CONFLICT,
        _("This %(id_field)s was already received with different content.")
        % {"id_field": id_field},
    )
