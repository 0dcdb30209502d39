"""The cells slice's personal data: the cells a person operates or applied for (with what
they did in the lifecycle, scored, or uploaded), and their objections.

Erasure removes the person's operator links (the cell stays, run by nobody until an
administrator adds someone) and blanks a family cell's contact (a family's contact is a
person); staff decisions, scores and evidence stay, tied to nobody. An objection stays
counted, without its author or its text (the text may name people)."""

from __future__ import annotations

from typing import Any

from carbon.models import User
from carbon.personal_data import PersonalData
from zerowaste.cells.models import (
    Cell,
    CellKind,
    CellOperator,
    CellTransition,
    Evidence,
    IndicatorScore,
    Objection,
)


def cells_export(*, user: User) -> dict[str, Any]:
    return {
        "operated": [
            {"cell": op.cell_id, "name": op.cell.name, "since": op.added_at.isoformat()}
            for op in CellOperator.objects.filter(user=user).select_related("cell")
        ],
        "lifecycle_moves": [
            {"cell": t.cell_id, "action": t.action, "reason": t.reason, "at": t.at.isoformat()}
            for t in CellTransition.objects.filter(actor=user).order_by("at", "id")
        ],
        "scores": [
            {"cell": s.cell_id, "indicator": s.indicator.code, "score": s.score}
            for s in IndicatorScore.objects.filter(assessor=user).select_related("indicator")
        ],
        "evidence": [
            {"cell": e.cell_id, "id": str(e.pk), "caption": e.caption}
            for e in Evidence.objects.filter(uploaded_by=user)
        ],
    }


def cells_erase(*, user: User) -> None:
    operated = list(CellOperator.objects.filter(user=user).values_list("cell_id", flat=True))
    Cell.objects.filter(pk__in=operated, kind=CellKind.FAMILY).update(
        contact_name="", contact_phone=""
    )
    CellOperator.objects.filter(user=user).delete()
    CellTransition.objects.filter(actor=user).update(actor=None)
    IndicatorScore.objects.filter(assessor=user).update(assessor=None)
    Evidence.objects.filter(uploaded_by=user).update(uploaded_by=None)


def objections_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {"cell": o.cell_id, "reason": o.reason, "created_at": o.created_at.isoformat()}
        for o in Objection.objects.filter(user=user).order_by("created_at")
    ]


def objections_erase(*, user: User) -> None:
    Objection.objects.filter(user=user).update(user=None, reason="", idempotency_key="")


PROVIDERS = (
    PersonalData(
        "zerowaste_cells",
        (CellOperator, CellTransition, IndicatorScore, Evidence),
        cells_export,
        cells_erase,
    ),
    PersonalData("zerowaste_objections", (Objection,), objections_export, objections_erase),
)
