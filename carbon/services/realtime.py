"""What the core's writes tell the realtime side, after commit: a resident's balance changed,
credits were awarded or reversed, a resident moved community. Nothing here talks to the
channel layer: topics are marked in the leaderboard backend and the ASGI workers' push loop
(carbon.leaderboards.push) sends them, coalesced. A failure never fails a write.

Writes announce through changes_on_commit: what one transaction changed (every resident
whose balance moved, every award and reversal) goes out in one call to each side after it
commits, however many ledger operations the transaction made. On Redis that call only
queues the board increments and topic touches in the process's outbox
(carbon.leaderboards.publisher), which sends those of many transactions in one round trip;
on the database backend it is one short transaction of a fixed number of statements.
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


class _Flush:
    """One change's flush: sends what the markers collected, unless a later change's flush
    that is sure to run whenever this one does has taken over."""

    __slots__ = ("batch", "savepoints", "superseded")

    def __init__(self, batch: _CommitBatch, savepoints: frozenset[str]) -> None:
        self.batch = batch
        self.savepoints = savepoints
        self.superseded = False

    def __call__(self) -> None:
        if not self.superseded:
            self.batch.send()


class _CommitBatch:
    """What one connection's transaction changed, announced once after it commits.

    Each change registers two callbacks with transaction.on_commit: a marker that adds the
    change to the batch, then a flush that sends the batch. Both belong to the change's
    savepoints, so a change rolled back with a savepoint is dropped whole (Django drops the
    savepoint's callbacks) and the callbacks of a transaction that rolls back never run.
    A later change's flush supersedes an earlier one when it sits in no savepoint the
    earlier one is not in (then it runs whenever the earlier one would, and after it): a
    transaction's changes at one level go out in one send, by the last flush.
    """

    def __init__(self) -> None:
        self.user_ids: dict[int, None] = {}  # ordered, without repeats
        self.credits: list[tuple[int, int, datetime]] = []
        self.groups: dict[int, tuple[int | None, int | None]] = {}
        # Flushes not superseded yet: at most one per level of savepoints in use.
        self.open: list[_Flush] = []

    def collect(self, user_ids: list[int], credits: list, groups: dict) -> None:
        self.user_ids.update(dict.fromkeys(user_ids))
        self.credits.extend(credits)
        self.groups.update(groups)

    def flush_for(self, savepoints: frozenset[str]) -> _Flush:
        flush = _Flush(self, savepoints)
        still_open = []
        for earlier in self.open:
            if savepoints <= earlier.savepoints:
                earlier.superseded = True
            else:
                still_open.append(earlier)
        self.open = [*still_open, flush]
        return flush

    def send(self) -> None:
        user_ids, credits, groups = list(self.user_ids), self.credits, self.groups
        self.user_ids, self.credits, self.groups = {}, [], {}
        if user_ids or credits:
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
    transaction.on_commit(batch.flush_for(frozenset(connection.savepoint_ids)))
