"""The leaderboard engine: feeds score changes into the backend, reads boards with ranks,
rebuilds a series from its source of truth, rolls the windows over, and keeps the
cross-process state of pushes (dirty topics, sequence numbers) through the backend.

Everything a write path calls (board_record, topics_touch) runs after commit and never
raises: the ledger is the truth, and a rebuild puts a board right.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from django.conf import settings

from carbon.leaderboards import publisher, registry
from carbon.leaderboards.backends import ScoreChange, backend_name, get_backend
from carbon.leaderboards.registry import Board, RatioSource, Who
from carbon.leaderboards.windows import (
    LONGEST_ROLLING_DAYS,
    ROLLING_BUCKETS,
    Window,
    bucket_for_window,
    buckets_for_event,
    local_date,
    month_bucket,
    rolling_start,
    week_bucket,
)

log = logging.getLogger(__name__)


def member_key(pk: int) -> str:
    """Zero-padded, so the tie order (member key, highest first) is the id order."""
    return f"{pk:012d}"


def board_topic(key: str) -> str:
    return f"board:{key}"


# --- retention and buckets -------------------------------------------------------------


def _previous_week(today: date) -> str:
    return week_bucket(today - timedelta(days=7))


def _previous_month(today: date) -> str:
    return month_bucket(today.replace(day=1) - timedelta(days=1))


def _kept(bucket: str, today: date) -> bool:
    """Buckets a board may still read: all time, this and last week and month, the days of
    the longest rolling window, the rolling sums."""
    if bucket == "all" or bucket in ROLLING_BUCKETS.values():
        return True
    if bucket.startswith("w:"):
        return bucket in (week_bucket(today), _previous_week(today))
    if bucket.startswith("m:"):
        return bucket in (month_bucket(today), _previous_month(today))
    if bucket.startswith("d:"):
        oldest = today - timedelta(days=LONGEST_ROLLING_DAYS)
        return date.fromisoformat(bucket[2:]) >= oldest
    return False


def _starts(today: date, windows: frozenset[Window] = frozenset(Window)) -> dict[str, date]:
    return {
        bucket: rolling_start(window, today)
        for window, bucket in ROLLING_BUCKETS.items()
        if window in windows
    }


@dataclass(frozen=True)
class _Plan:
    """What a write to a series needs from the registry: the windows some board reads from
    it (it keeps only their buckets: a series shown all-time only, like a campaign's tally,
    writes one bucket per event, not six) and the topics of those boards."""

    windows: frozenset[Window]
    topics: tuple[str, ...]


# series -> (registry generation, plan): a registered series' plan is derived once, not per
# write (a family's scope is resolved each time: its boards come and go with its rows).
_plans: dict[str, tuple[int, _Plan]] = {}


def _plan(series: str) -> _Plan:
    generation = registry.generation()
    found = _plans.get(series)
    if found is not None and found[0] == generation:
        return found[1]
    boards = registry.boards_of_series(series)
    plan = _Plan(frozenset(b.window for b in boards), tuple(board_topic(b.key) for b in boards))
    if registry.registered(series):
        _plans[series] = (generation, plan)
    return plan


def _windows(series: str) -> frozenset[Window]:
    return _plan(series).windows


@lru_cache(maxsize=512)
def _event_buckets(day: date, today: date, windows: frozenset[Window]) -> tuple[str, ...]:
    all_, week, month, daily = buckets_for_event(day)
    wanted = {
        all_: Window.ALL in windows,
        week: Window.WEEK in windows,
        month: Window.MONTH in windows,
        daily: bool(windows & set(ROLLING_BUCKETS)),
    }
    return tuple(b for b, keep in wanted.items() if keep and _kept(b, today))


# --- feeding ----------------------------------------------------------------------------


def board_record(*, series: str, entries: Iterable[tuple[str, int, datetime]]) -> None:
    """Add (member, amount, at) events to a series and mark its boards for a push. Call it
    after your transaction commits (transaction.on_commit). Never raises."""
    boards_record(entries={series: entries})


def _background() -> bool:
    """Writes go through this process's outbox (carbon.leaderboards.publisher) rather than
    one round trip each: on Redis, unless LEADERBOARD_PUBLISH_SECONDS is 0."""
    return settings.LEADERBOARD_PUBLISH_SECONDS > 0 and backend_name() == "redis"


def boards_record(
    *, entries: dict[str, Iterable[tuple[str, int, datetime]]], touch: Sequence[str] = ()
) -> None:
    """board_record for several series at once, also marking the `touch` topics (residents'
    balances) changed: one write to the backend for all of it (on Redis, through the outbox:
    one write for every transaction of the last few milliseconds). Never raises.

    What the backend write needs from the registry and the clock (each series' windows and
    topics, each event's city day) is resolved here, in the writer's thread."""
    try:
        rows = []
        windows = {}
        topics = list(touch)
        for series, series_rows in entries.items():
            found = False
            for member, amount, at in series_rows:
                if amount:
                    rows.append((series, member, local_date(at), int(amount)))
                    found = True
            if found:
                plan = _plan(series)
                windows[series] = plan.windows
                topics += plan.topics
        if not rows and not topics:
            return
        if _background():
            publisher.outbox_put(rows=rows, windows=windows, topics=topics)
        else:
            outgoing = publisher.Outgoing()
            outgoing.add(rows=rows, windows=windows, topics=topics)
            _send(outgoing)
    except Exception:
        log.warning(
            "leaderboards %s: update failed (rebuild to repair)", ", ".join(entries), exc_info=True
        )


def _send(outgoing: publisher.Outgoing) -> None:
    """One backend write for merged score changes and topic touches: the outbox's sender,
    or the inline write of boards_record. Never raises."""
    try:
        today = local_date()
        changes = []
        read_windows: set[Window] = set()
        for (series, member, day), amount in outgoing.scores.items():
            if not amount:  # increments that cancelled out within one send
                continue
            windows = outgoing.windows[series]
            read_windows |= windows
            _rolled(series, today)
            changes.append(
                ScoreChange(series, member, day, amount, _event_buckets(day, today, windows))
            )
        topics = list(outgoing.topics)
        if changes:
            get_backend().apply(
                changes=changes, starts=_starts(today, frozenset(read_windows)), touch=topics
            )
        elif topics:
            get_backend().topics_touch(topics=topics)
    except Exception:
        log.warning(
            "leaderboards %s: update failed (rebuild to repair)",
            ", ".join(outgoing.windows),
            exc_info=True,
        )


publisher.outbox_configure(send=_send)


def outbox_flush() -> None:
    """Send this process's pending board writes now (see carbon.leaderboards.publisher)."""
    publisher.outbox_flush()


def board_set(*, series: str, scores: dict[str, int]) -> None:
    """Set members' scores on an all-time-only series to recounted values (a source whose
    scores do not add up over time, such as distinct species per observer: the app recounts
    a member from its truth after each change and sets the result; 0 removes the row). Call
    it after commit. Never raises."""
    try:
        outbox_flush()
        if _windows(series) != {Window.ALL}:
            raise ValueError(f"{series}: only an all-time-only series takes set scores")
        if not scores:
            return
        get_backend().put(series=series, bucket="all", scores=scores)
        topics_touch(topics=[board_topic(b.key) for b in registry.boards_of_series(series)])
    except Exception:
        log.warning("leaderboard %s: update failed (rebuild to repair)", series, exc_info=True)


def board_move(*, series: str, member: str, to_series: str, old: str | None, new: str | None):
    """Move what `member` has on `series`, in every bucket, from group `old` to group `new`
    of `to_series` (a resident changing community, or erased and leaving theirs)."""
    if old == new:
        return
    try:
        outbox_flush()  # the member's awards announced before the move go first
        backend = get_backend()
        changes = []
        for bucket in backend.buckets(series=series):
            score = backend.score(series=series, bucket=bucket, member=member)
            if not score:
                continue
            for group, sign in ((old, -1), (new, 1)):
                if group is not None:
                    changes.append(ScoreChange(to_series, group, date.min, sign * score, (bucket,)))
        backend.apply(changes=changes, starts={})
        topics_touch(topics=[board_topic(b.key) for b in registry.boards_of_series(to_series)])
    except Exception:
        log.warning("leaderboard %s: move failed (rebuild to repair)", to_series, exc_info=True)


def topics_touch(*, topics: Sequence[str]) -> None:
    """Mark topics (a board, a resident's balance) changed: the push loop of the ASGI
    workers claims each at most once per LEADERBOARD_PUSH_INTERVAL and pushes it."""
    try:
        if _background():
            publisher.outbox_put(rows=(), windows={}, topics=topics)
            return
        get_backend().topics_touch(topics=list(topics))
    except Exception:
        log.warning("push topics %s not marked", topics, exc_info=True)


# --- rolling over -------------------------------------------------------------------------

_rolled_through: dict[str, date] = {}


def _rolled(series: str, today: date) -> None:
    """Roll the series' rolling sums to today once per process per day (the periodic job
    does it for everyone; this covers the minutes after midnight before it runs)."""
    if _rolled_through.get(series) == today:
        return
    backend = get_backend()
    for bucket, start in _starts(today).items():
        if backend.marker(series=series, bucket=bucket) is not None:
            backend.roll(series=series, bucket=bucket, new_start=start)
    _rolled_through[series] = today


def boards_roll(*, today: date | None = None) -> int:
    """The periodic roll-over: move every series' rolling windows to today, drop buckets no
    board reads any more, and push a fresh snapshot of every board (a week or a month may
    have turned). Idempotent. Returns the number of buckets dropped."""
    today = today or local_date()
    outbox_flush()
    backend = get_backend()
    dropped = 0
    for source in registry.sources():
        if isinstance(source, RatioSource):
            continue
        _rolled_through.pop(source.key, None)
        _rolled(source.key, today)
        for bucket in backend.buckets(series=source.key):
            if not _kept(bucket, today):
                backend.drop(series=source.key, bucket=bucket)
                dropped += 1
    topics_touch(topics=[board_topic(b.key) for b in registry.boards()])
    return dropped


def forget_process_state() -> None:
    """Forget what this process remembers of the boards (tests, between two databases),
    its pending writes too."""
    publisher.outbox_discard()
    _rolled_through.clear()
    _plans.clear()


# --- rebuilding -----------------------------------------------------------------------------


def series_rebuild(*, series: str, today: date | None = None) -> int:
    """Recompute a series from its source's events and swap it in. Returns the rows."""
    source = registry.series(series)
    if source is None:
        raise KeyError(series)
    outbox_flush()
    today = today or local_date()
    windows = _windows(series)
    starts = _starts(today, windows)
    buckets: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for member, day, amount in source.events():
        if not amount:
            continue
        for bucket in _event_buckets(day, today, windows):
            buckets[bucket][member] += amount
        for bucket, start in starts.items():
            if start <= day:
                buckets[bucket][member] += amount
    for window in windows:
        buckets.setdefault(bucket_for_window(window, today), defaultdict(int))
    get_backend().replace(
        series=series, buckets={b: dict(rows) for b, rows in buckets.items()}, markers=starts
    )
    _rolled_through[series] = today
    topics_touch(topics=[board_topic(b.key) for b in registry.boards_of_series(series)])
    return sum(len(rows) for rows in buckets.values())


def boards_rebuild(*, key: str | None = None) -> list[str]:
    """Rebuild the series behind one board (or a series key), or every series."""
    if key is None:
        keys = [s.key for s in registry.sources() if not isinstance(s, RatioSource)]
    elif (found := registry.board(key)) is not None:
        keys = [found.series]
    elif registry.series(key) is not None:
        keys = [key]
    else:
        raise KeyError(key)
    for series in keys:
        series_rebuild(series=series)
    return keys


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    rank: int
    member: str
    score: int
    who: Who


def _ranked(rows: list[tuple[str, int]], *, first_rank: int, first_position: int) -> list:
    """Competition ranks down a slice of the board: a row whose score differs from the one
    above it ranks at its position, an equal one shares the rank above."""
    ranked = []
    previous = None
    for i, (member, score) in enumerate(rows):
        if previous is None:
            rank = first_rank
        elif score != previous[1]:
            rank = first_position + i + 1
        else:
            rank = ranked[-1][0]
        ranked.append((rank, member, score))
        previous = (member, score)
    return ranked


def _ratio_rows(board: Board, bucket: str) -> list[tuple[str, int]]:
    source: RatioSource = board.source  # type: ignore[assignment]
    totals = get_backend().scores(series=board.series, bucket=bucket)
    divisors = source.divisors(list(totals))
    rows = [(m, total // max(1, divisors.get(m, 0) or 1)) for m, total in totals.items()]
    rows = [r for r in rows if r[1] != 0]
    rows.sort(key=lambda r: (r[1], r[0]), reverse=True)
    return rows


def _slice(board: Board, *, offset: int, limit: int) -> list[tuple[int, str, int]]:
    outbox_flush()  # this process reads its own writes
    today = local_date()
    _rolled(board.series, today)
    bucket = bucket_for_window(board.window, today)
    if isinstance(board.source, RatioSource):
        rows = _ratio_rows(board, bucket)
        part = rows[offset : offset + limit]
        if not part:
            return []
        first_rank = 1 + sum(1 for r in rows if r[1] > part[0][1])
        return _ranked(part, first_rank=first_rank, first_position=offset)
    backend = get_backend()
    part = backend.top(series=board.series, bucket=bucket, offset=offset, limit=limit)
    if not part:
        return []
    first_rank = (
        1
        if offset == 0
        else 1 + backend.count_above(series=board.series, bucket=bucket, score=part[0][1])
    )
    return _ranked(part, first_rank=first_rank, first_position=offset)


def _position(board: Board, member: str) -> int | None:
    outbox_flush()
    today = local_date()
    _rolled(board.series, today)
    bucket = bucket_for_window(board.window, today)
    if isinstance(board.source, RatioSource):
        rows = _ratio_rows(board, bucket)
        return next((i for i, r in enumerate(rows) if r[0] == member), None)
    return get_backend().position(series=board.series, bucket=bucket, member=member)


def _with_who(board: Board, ranked: list[tuple[int, str, int]]) -> list[Row]:
    who = board.base.describe([m for _r, m, _s in ranked]) if ranked else {}
    return [Row(r, m, s, who.get(m, Who(name=None))) for r, m, s in ranked]


def board_top(*, board: Board, limit: int) -> list[Row]:
    return _with_who(board, _slice(board, offset=0, limit=limit))


def board_around(*, board: Board, member: str | None, before: int, after: int):
    """(rows around the member, the member's own row) — (top rows, None) when the member is
    not on the board (no grams in the window yet)."""
    if member is None:
        return board_top(board=board, limit=before + 1 + after), None
    if isinstance(board.source, RatioSource):
        position = _position(board, member)
        if position is None:
            return board_top(board=board, limit=before + 1 + after), None
        offset = max(0, position - before)
        rows = _with_who(board, _slice(board, offset=offset, limit=position - offset + 1 + after))
    else:
        outbox_flush()
        today = local_date()
        _rolled(board.series, today)
        bucket = bucket_for_window(board.window, today)
        backend = get_backend()
        found = backend.around(
            series=board.series, bucket=bucket, member=member, before=before, after=after
        )
        if found is None:
            return board_top(board=board, limit=before + 1 + after), None
        part, offset = found
        first_rank = (
            1
            if offset == 0
            else 1 + backend.count_above(series=board.series, bucket=bucket, score=part[0][1])
        )
        rows = _with_who(board, _ranked(part, first_rank=first_rank, first_position=offset))
    me = next((r for r in rows if r.member == member), None)
    return rows, me


def board_member_row(*, board: Board, member: str) -> Row | None:
    rows, me = board_around(board=board, member=member, before=0, after=0)
    return me


def board_seq(*, board: Board) -> int:
    outbox_flush()
    return get_backend().seq(topic=board_topic(board.key))


def member_for_user(*, board: Board, user) -> str | None:
    return board.base.member_of_user(user)


def push_interval_ms() -> int:
    return int(float(settings.LEADERBOARD_PUSH_INTERVAL) * 1000)
