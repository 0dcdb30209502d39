"""The backend protocol of the leaderboard engine, and the backend chosen in settings.

LEADERBOARD_BACKEND names it: "redis" (sorted sets; the default when REDIS_URL is set) or
"database" (the embedded default). Both keep the same buckets, order ties the same way
(score, then member key, highest first) and drop a member whose score comes back to 0, so
a board reads the same on either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Protocol

from django.conf import settings


@dataclass(frozen=True)
class ScoreChange:
    series: str
    member: str
    day: date
    delta: int
    #: The fixed buckets it adds to (all, its week, month and day, those still kept).
    buckets: tuple[str, ...]


class Backend(Protocol):
    def apply(
        self, *, changes: Sequence[ScoreChange], starts: dict[str, date], touch: Sequence[str] = ()
    ) -> None:
        """Add each change to its buckets, and to each rolling sum (`starts`: bucket -> the
        start a missing marker takes) whose start marker is not after the change's day.
        Atomic with respect to roll(). Then mark the `touch` topics as topics_touch does (in
        the same round trip where the backend can)."""

    def put(self, *, series: str, bucket: str, scores: dict[str, int]) -> None:
        """Set members' scores in one bucket (0 removes the member)."""

    def roll(self, *, series: str, bucket: str, new_start: date) -> None:
        """Move a rolling sum's start to `new_start`, subtracting the days that left it."""

    def marker(self, *, series: str, bucket: str) -> date | None: ...

    def buckets(self, *, series: str) -> list[str]: ...

    def drop(self, *, series: str, bucket: str) -> None: ...

    def top(self, *, series: str, bucket: str, offset: int, limit: int) -> list[tuple[str, int]]:
        """Rows by score then member, both highest first."""

    def score(self, *, series: str, bucket: str, member: str) -> int | None: ...

    def count_above(self, *, series: str, bucket: str, score: int) -> int: ...

    def position(self, *, series: str, bucket: str, member: str) -> int | None:
        """0-based place of the member in the board's order, None when absent."""

    def around(
        self, *, series: str, bucket: str, member: str, before: int, after: int
    ) -> tuple[list[tuple[str, int]], int] | None:
        """Rows from `before` above the member to `after` below it, with the 0-based place
        of the first; None when the member is absent."""

    def size(self, *, series: str, bucket: str) -> int: ...

    def scores(self, *, series: str, bucket: str) -> dict[str, int]: ...

    def replace(
        self, *, series: str, buckets: dict[str, dict[str, int]], markers: dict[str, date]
    ) -> None:
        """Swap a whole series for rebuilt buckets and rolling markers."""

    # -- coordination of pushes across processes --
    def topics_touch(self, *, topics: Sequence[str]) -> None: ...

    def topics_claim(self, *, interval_ms: int) -> list[tuple[str, int]]:
        """Dirty topics not flushed in the last interval: claimed (so exactly one process
        flushes each), with the next sequence number of each."""

    def seq(self, *, topic: str) -> int: ...


def backend_name() -> str:
    return settings.LEADERBOARD_BACKEND


@cache
def _backend(name: str) -> Backend:
    if name == "redis":
        from carbon.leaderboards.backends.redis import RedisBackend

        return RedisBackend(settings.LEADERBOARD_REDIS_URL or settings.REDIS_URL)
    if name == "database":
        from carbon.leaderboards.backends.database import DatabaseBackend

        return DatabaseBackend()
    raise ValueError(f"LEADERBOARD_BACKEND must be 'redis' or 'database', not {name!r}")


def get_backend() -> Backend:
    return _backend(backend_name())


def reset_backends() -> None:
    _backend.cache_clear()
