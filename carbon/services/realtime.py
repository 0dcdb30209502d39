"""What the core's writes tell the realtime side, after commit: a resident's balance changed,
credits were awarded or reversed, a resident moved community. Nothing here talks to the
channel layer: topics are marked in the leaderboard backend and the ASGI workers' push loop
(carbon.leaderboards.push) sends them, coalesced. A failure never fails a write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from carbon.leaderboards import engine, ledger_source
from carbon.leaderboards.push import balance_group

__all__ = ["balance_changed", "balance_group", "credits_changed", "resident_moved"]


def balance_changed(*, user_ids: Iterable[int]) -> None:
    engine.topics_touch(topics=[f"balance:{user_id}" for user_id in user_ids])


def credits_changed(*, entries: Sequence[tuple[int, int, datetime]]) -> None:
    """Awards (+) and reversals (-) just committed: (user id, grams, the award's time)."""
    ledger_source.ledger_credits_record(entries=entries)


def resident_moved(
    *, user_id: int, old: tuple[int | None, int | None], new: tuple[int | None, int | None]
) -> None:
    if old != new:
        ledger_source.resident_groups_moved(user_id=user_id, old=old, new=new)
