"""The pool slice's personal data: none of its own. A PoolSale reaches a person only through
the record it points to (a payment's requester, a redemption's staff member), which that
record's provider exports and unties; the PoolSale itself, money owed or paid, stays."""

from __future__ import annotations

from typing import Any

from carbon.models import User
from carbon.personal_data import PersonalData
from rewards.pool.models import PoolSale


def _export(*, user: User) -> list[dict[str, Any]]:
    return []


def _erase(*, user: User) -> None:
    return None


PROVIDERS = (PersonalData("pool", (PoolSale,), _export, _erase),)
