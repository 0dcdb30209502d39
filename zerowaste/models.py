"""The zerowaste app's models live in its slices (cells/, campaigns/) with the `zerowaste`
app label; importing them here registers them with Django."""

from zerowaste.campaigns.models import Campaign, Candidate, Vote, VoteReversal
from zerowaste.cells.models import (
    Achievement,
    Cell,
    CellKind,
    CellOperator,
    CellReminder,
    CellStatus,
    CellTransition,
    Evidence,
    Indicator,
    IndicatorScore,
    Objection,
)

__all__ = [
    "Achievement",
    "Campaign",
    "Candidate",
    "Cell",
    "CellKind",
    "CellOperator",
    "CellReminder",
    "CellStatus",
    "CellTransition",
    "Evidence",
    "Indicator",
    "IndicatorScore",
    "Objection",
    "Vote",
    "VoteReversal",
]
