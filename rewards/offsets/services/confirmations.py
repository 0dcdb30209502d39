"""The bank's signed answers about each offset we sent it: confirmed (with the interest it
credited) posts the hold, so the grams move to the bank's enterprise account; refused voids
it, points back. Rows go through the batch kit: each is checked against its declared model,
then against the offset it names, in its own transaction. Resending an answer is harmless;
an answer for another amount, another bank's offset or one already answered otherwise is
refused for that row and changes nothing."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from pydantic import BaseModel, Field, Strict

from carbon.adapters.batch import (
    BatchReport,
    RowCode,
    RowError,
    RowField,
    RowModel,
    RowResult,
    RowStatus,
    batch_size_check,
    payload_hash,
    row_duplicate_or_conflict,
    whole_number,
)
from carbon.errors import HoldExpired, PendingAlreadyResolved
from carbon.models import Partner
from carbon.services.ledger import ledger_post, ledger_void
from rewards.offsets.models import Offset, OffsetStatus

MAX_BATCH = 1000
_MAX_ID = 2**63 - 1
_MAX_FEN = 10**12


class OffsetAnswer(RowModel):
    """The bank's answer about one offset of a batch we sent it."""

    not_an_object: ClassVar[str] = gettext_lazy("Each answer is a JSON object.")

    offset_id: whole_number(_MAX_ID, "Our id of the offset, as in the batch.")  # type: ignore[valid-type]
    status: Annotated[
        Literal["confirmed", "refused"],
        Field(description="confirmed (the interest was credited) or refused."),
        RowField(RowCode.INVALID_FIELD, gettext_lazy("`status` is confirmed or refused.")),
    ]
    grams: whole_number(_MAX_ID, "The offset's grams, as in the batch.")  # type: ignore[valid-type]
    value_fen: Annotated[
        int | None,
        Strict(),
        Field(default=None, ge=0, le=_MAX_FEN, description="The offset's value, as in the batch."),
        RowField(RowCode.INVALID_FIELD, gettext_lazy("`value_fen` is a whole number of fen.")),
    ]
    interest_credited_fen: Annotated[
        int | None,
        Strict(),
        Field(
            default=None,
            ge=0,
            le=_MAX_FEN,
            description="Mortgage interest credited to the loan, in fen (required to confirm).",
        ),
        RowField(
            RowCode.INVALID_FIELD,
            gettext_lazy("`interest_credited_fen` is a whole number of fen."),
        ),
    ]
    reason: Annotated[
        str,
        Strict(),
        Field(default="", max_length=300, description="Why the bank refused (refusals)."),
        RowField(
            RowCode.INVALID_FIELD, gettext_lazy("`reason` is a text of at most 300 characters.")
        ),
    ]


class OffsetAnswers(BaseModel):
    """What the bank posts: its answers, for offsets of one or several of our batches."""

    offsets: list[OffsetAnswer] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} answers; a larger request is refused whole (413).",
    )


def _label(row: Any) -> str | None:
    if isinstance(row, dict) and isinstance(row.get("offset_id"), int | str):
        return str(row["offset_id"])[:40]
    return None


def offset_answers_apply(*, bank: Partner, rows: list[Any]) -> BatchReport:
    """Apply the bank's answers, each in its own transaction."""
    batch_size_check(rows=rows, limit=MAX_BATCH, noun=pgettext("batch rows", "answers"))
    results: list[RowResult] = []
    for index, row in enumerate(rows):
        try:
            answer = OffsetAnswer.row_parse(row)
        except RowError as exc:
            results.append(RowResult.refused(index, _label(row), exc))
            continue
        try:
            results.append(_apply(index=index, bank=bank, answer=answer))
        except RowError as exc:
            results.append(RowResult.refused(index, str(answer.offset_id), exc))
        except DatabaseError:
            results.append(
                RowResult(
                    index,
                    str(answer.offset_id),
                    RowStatus.ERROR,
                    RowCode.NOT_STORED,
                    _("The answer could not be stored; send it again."),
                )
            )
    return BatchReport(id_field="offset_id", rows=results)


def _apply(*, index: int, bank: Partner, answer: OffsetAnswer) -> RowResult:
    row_id = str(answer.offset_id)
    answer_hash = payload_hash(answer.model_dump())
    with transaction.atomic():
        # Only the offset's row is locked (then the resident's account, by the ledger): the
        # order the expiry job and staff voids take too.
        offset = Offset.objects.select_for_update().filter(pk=answer.offset_id).first()
        if offset is None or offset.programme.bank_id != bank.pk:
            # Another bank's offset is not told apart from one that does not exist.
            raise RowError(RowCode.UNKNOWN_OFFSET, _("No offset of yours has this id."))
        extra = {"offset_status": offset.status}
        if offset.status in (OffsetStatus.CONFIRMED, OffsetStatus.REFUSED):
            if offset.status != answer.status:
                raise RowError(
                    RowCode.OFFSET_RESOLVED,
                    _("This offset was already answered otherwise: %(status)s.")
                    % {"status": offset.status},
                )
            return row_duplicate_or_conflict(
                index=index,
                row_id=row_id,
                id_field="offset_id",
                row_hash=answer_hash,
                stored_hash=offset.answer_hash,
                extra=extra,
            )
        if offset.status == OffsetStatus.REQUESTED:
            raise RowError(
                RowCode.OFFSET_NOT_SENT, _("This offset was not in a batch you accepted yet.")
            )
        if offset.status == OffsetStatus.FAILED:
            raise RowError(
                RowCode.OFFSET_EXPIRED,
                _("This offset is closed (not confirmed in time, or voided); its grams went back."),
            )
        if answer.grams != offset.grams or (
            answer.value_fen is not None and answer.value_fen != offset.value_fen
        ):
            raise RowError(
                RowCode.AMOUNT_MISMATCH,
                _("The offset was for %(grams)d g worth %(fen)d fen; nothing was changed.")
                % {"grams": offset.grams, "fen": offset.value_fen},
            )
        now = timezone.now()
        if answer.status == "confirmed":
            if answer.interest_credited_fen is None:
                raise RowError(
                    RowCode.INVALID_FIELD, _("A confirmation says `interest_credited_fen`.")
                )
            try:
                ledger_post(pending_id=offset.hold_id, description=f"Offset {offset.pk} confirmed")
            except (HoldExpired, PendingAlreadyResolved):
                # The hold ran out (our expiry would have come first): it is void now, and
                # the offset says so; the bank's answer is refused.
                offset.status, offset.resolved_at = OffsetStatus.FAILED, now
                offset.bank_reason = "hold expired before the bank confirmed"
                offset.save(update_fields=["status", "resolved_at", "bank_reason"])
                return RowResult(
                    index,
                    row_id,
                    RowStatus.ERROR,
                    RowCode.OFFSET_EXPIRED,
                    _("This offset expired before your confirmation; its grams went back."),
                    extra={"offset_status": offset.status},
                )
            offset.status = OffsetStatus.CONFIRMED
            offset.interest_credited_fen = answer.interest_credited_fen
        else:
            ledger_void(pending_id=offset.hold_id, description=f"Offset {offset.pk} refused")
            offset.status = OffsetStatus.REFUSED
            offset.bank_reason = answer.reason
        offset.resolved_at, offset.answer_hash = now, answer_hash
        offset.save(
            update_fields=[
                "status",
                "interest_credited_fen",
                "bank_reason",
                "resolved_at",
                "answer_hash",
            ]
        )
    return RowResult(index, row_id, RowStatus.ACCEPTED, extra={"offset_status": offset.status})
