"""The offers slice's personal data: the stock changes an administrator made. They are an
audit record of the offer: erasure keeps them, pointing at the anonymised user row."""

from __future__ import annotations

from typing import Any

from carbon.models import User
from carbon.personal_data import PersonalData
from rewards.offers.models import StockAdjustment


def stock_adjustments_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {"offer": a.offer_id, "delta": a.delta, "reason": a.reason, "at": a.created_at.isoformat()}
        for a in StockAdjustment.objects.filter(actor=user).order_by("created_at")
    ]


def stock_adjustments_erase(*, user: User) -> None:
    """Nothing: who changed the stock stays on record; the user row itself is anonymised."""


PROVIDERS = (
    PersonalData(
        "rewards_stock_adjustments",
        (StockAdjustment,),
        stock_adjustments_export,
        stock_adjustments_erase,
    ),
)
