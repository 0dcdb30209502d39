"""Objections to a cell during its public notice period (公示): filed by logged-in residents,
one each per cell, counted publicly and read by the assessor before certifying."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from carbon.errors import IdempotencyConflict
from carbon.models import User
from carbon.services.people import resident_lock
from zerowaste.cells.errors import CellNotFound, CellNotInNotice, ObjectionExists
from zerowaste.cells.models import Cell, CellStatus, Objection


def objection_file(
    *,
    user: User,
    cell_id: Any,
    reason: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> tuple[Objection, bool]:
    """File my objection; the same key again answers it (created False)."""
    now = now or timezone.now()
    cell = Cell.objects.public().filter(pk=cell_id).first()
    if cell is None:
        raise CellNotFound()
    try:
        with transaction.atomic():
            resident_lock(user=user)
            mine = Objection.objects.filter(cell=cell, user=user).first()
            if mine is not None:
                if mine.idempotency_key != idempotency_key:
                    raise ObjectionExists()
                if mine.reason != reason:
                    raise IdempotencyConflict()
                return mine, False
            cell = Cell.objects.select_for_update().get(pk=cell.pk)
            if cell.status != CellStatus.IN_NOTICE or now >= cell.notice_ends_at:
                raise CellNotInNotice(
                    details={
                        "status": cell.status,
                        "notice_ends_at": cell.notice_ends_at.isoformat()
                        if cell.notice_ends_at
                        else None,
                    }
                )
            objection = Objection.objects.create(
                cell=cell, user=user, reason=reason, idempotency_key=idempotency_key
            )
    except IntegrityError:  # pragma: no cover - the user lock serialises one resident's filings
        raise ObjectionExists() from None
    return objection, True


def objection_counts(*, cell_ids: list[int]) -> dict[int, int]:
    from django.db.models import Count

    rows = (
        Objection.objects.filter(cell_id__in=cell_ids)
        .values("cell_id")
        .annotate(n=Count("id"))
        .values_list("cell_id", "n")
    )
    return dict(rows)
