"""An assessor's indicator scores for a cell (the admin's scoring form calls this)."""

from __future__ import annotations

from django.db import transaction

from carbon.errors import DomainError, ErrorCode
from carbon.models import User
from zerowaste.cells.errors import CellNotFound, UnknownIndicator
from zerowaste.cells.models import Cell, Indicator, IndicatorScore


def indicator_score_record(
    *, cell_id: int, indicator_code: str, score: int, assessor: User, note: str = ""
) -> IndicatorScore:
    if not assessor.has_perm("zerowaste.review_cell"):
        raise DomainError(code=ErrorCode.PERMISSION_DENIED)
    if not 0 <= score <= 100:
        raise DomainError(details={"field": "score"}, code=ErrorCode.INVALID)
    with transaction.atomic():
        cell = Cell.objects.filter(pk=cell_id).first()
        if cell is None:
            raise CellNotFound()
        indicator = Indicator.objects.filter(kind=cell.kind, code=indicator_code).first()
        if indicator is None:
            raise UnknownIndicator()
        return IndicatorScore.objects.create(
            cell=cell, indicator=indicator, score=score, assessor=assessor, note=note[:300]
        )


def latest_scores(*, cell: Cell) -> dict[int, IndicatorScore]:
    """indicator id -> the latest score of this cell."""
    latest: dict[int, IndicatorScore] = {}
    for row in cell.scores.order_by("assessed_at", "id"):
        latest[row.indicator_id] = row
    return latest
