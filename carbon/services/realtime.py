"""What the core's writes tell the realtime side, after commit: a resident's balance changed,
credits were awarded or reversed, a resident moved community. Nothing here talks to the
channel layer: topics are marked in the leaderboard backend and the ASGI workers' push loop
(carbon.leaderboards.push) sends them, coalesced. A failure never fails a write.

Writes announce through changes_on_commit: what one transaction changed (every resident
whose balance moved, every award and reversal) goes out in one call to each side after it
commits, however many ledger operations the transaction made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import transaction

from carbon.leaderboards import engine, ledger_source
from carbon.leaderboards.push import balance_group

__all__ = [
    "balance_changed",
    "balance_group",
    "changes_on_commit",
    "credits_changed",
    "resident_moved",
]


def balance_changed(*, user_ids: Iterable[int]) -> None:
    engine.topics_touch(topics=[f"balance:{user_id}" for user_id in user_ids])


def credits_changed(
    *,
    entries: Sequence[tuple[int, int, datetime]],
    groups: dict[int, tuple[int | None, int | None]] | None = None,
    balances_of: Iterable[int] = (),
) -> None:
    """Awards (+) and reversals (-) just committed: (user id, grams, the award's time).
    `groups`: user id -> (community id, district id) when already read; `balances_of`: the
    users whose balance changed too, marked in the same write (see balance_changed)."""
    ledger_source.ledger_credits_record(
        entries=entries,
        groups=groups,
        touch=[f"balance:{user_id}" for user_id in balances_of],
    )


def resident_moved(
    *, user_id: int, old: tuple[int | None, int | None], new: tuple[int | None, int | None]
) -> None:
    if old != new:
        ledger_source.resident_groups_moved(user_id=user_id, old=old, new=new)


# --- one announcement per transaction ------------------------------------------------------


class _CommitBatch:
    """What one connection's current transaction changed, announced once after it commits.

    Each change registers a marker with transaction.on_commit, so a change made in a
    savepoint that rolled back is dropped with it (Django drops the savepoint's callbacks);
    the markers run in order after the commit and fill the batch. The flush is registered
    after each change with no savepoint attached (so no rollback of a savepoint drops it)
    and only the one registered last sends: it runs after every surviving marker.
    """

    def __init__(self) -> None:
        self.user_ids: dict[int, None] = {}  # ordered, without repeats
        self.credits: list[tuple[int, int, datetime]] = []
        self.groups: dict[int, tuple[int | None, int | None]] = {}
        self.last_flush = 0

    def collect(self, user_ids: list[int], credits: list, groups: dict) -> None:
        self.user_ids.update(dict.fromkeys(user_ids))
        self.credits.extend(credits)
        self.groups.update(groups)

    def flush(self, seq: int) -> None:
        if seq != self.last_flush:
            return  # a later change registered a later flush
        user_ids, credits, groups = list(self.user_ids), self.credits, self.groups
        self.user_ids, self.credits, self.groups = {}, [], {}
        _announce(user_ids=user_ids, credits=credits, groups=groups)


def _announce(
    *,
    user_ids: list[int],
    credits: list[tuple[int, int, datetime]],
    groups: dict[int, tuple[int | None, int | None]],
) -> None:
    if credits:
        # The balances are marked in the same write as the boards.
        credits_changed(entries=credits, groups=groups, balances_of=user_ids)
    elif user_ids:
        balance_changed(user_ids=user_ids)


def changes_on_commit(
    *,
    user_ids: Iterable[int | None],
    credits: Sequence[tuple[int, int, datetime]] = (),
    groups: dict[int, tuple[int | None, int | None]] | None = None,
) -> None:
    """Announce, once the current transaction commits, that these residents' balances
    changed and these credits were awarded (+) or reversed (-): (user id, grams, the award's
    time). `groups`: user id -> (community id, district id), when the write read them.
    Outside a transaction it announces at once."""
    ids = [i for i in user_ids if i is not None]
    credits = list(credits)
    groups = dict(groups or {})
    if not ids and not credits:
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _announce(user_ids=ids, credits=credits, groups=groups)
        return
    batch = getattr(connection, "_carbon_commit_batch", None)
    if batch is None:
        batch = connection._carbon_commit_batch = _CommitBatch()
    transaction.on_commit(lambda: batch.collect(ids, credits, groups))
    batch.last_flush += 1
    seq = batch.last_flush
    # Appended as transaction.on_commit would from outside every savepoint: Django keeps
    # (savepoint ids, callback, robust) per callback and drops those of a rolled-back
    # savepoint, so an empty set keeps the flush whatever rolls back inside.
    connection.run_on_commit.append((set(), lambda: batch.flush(seq), False))
