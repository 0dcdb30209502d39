"""The board registry: what each board counts, where its truth comes from, who its rows are.

A *series* is one score kept per member (residents' grams, a campaign's votes) in every
window bucket; a *board* is a series read in one window (`residents.grams.7d`). The core
registers its own series (carbon.leaderboards.ledger_source); a feature app registers the
series it feeds from its AppConfig.ready() and records its events with
`carbon.leaderboards.engine.board_record`. The core never imports a feature app.

A source's `events()` is the source of truth for a rebuild: (member, city-time date, amount)
rows, already summed per member and day if the source likes (the engine sums again).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from carbon.errors import DomainError, ErrorCode
from carbon.leaderboards.windows import Window

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
ALL_WINDOWS = tuple(Window)

TIES = _(
    "Higher scores rank first. Equal scores share a rank (1, 2, 2, 4); among equal scores, "
    "rows are listed by member id, highest first."
)


@dataclass(frozen=True)
class Who:
    """How a row is shown. `name` is None for an erased resident (and for one who never set a
    display name): a board never names someone who asked to be forgotten."""

    name: str | None
    community: str | None = None
    district: str | None = None


@dataclass(frozen=True)
class BoardSource:
    key: str
    title: Promise | str
    #: What counts, in a sentence a resident can check against their own history.
    counts: Promise | str
    unit: str
    #: What a row is: "resident", "community", "district", or the source's own kind.
    member_kind: str
    events: Callable[[], Iterable[tuple[str, date, int]]]
    describe: Callable[[Sequence[str]], dict[str, Who]]
    windows: tuple[Window, ...] = ALL_WINDOWS
    #: For a member of a resident's own: the member key that is "me" on this series.
    member_of_user: Callable[[object], str | None] = field(default=lambda user: None)

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key):
            raise ValueError(f"board source key {self.key!r} must look like 'app.thing'")


@dataclass(frozen=True)
class RatioSource:
    """A series derived on read: another series' score divided per member by a count (grams
    per resident). Kept derived so a change of a count needs no write of its own."""

    key: str
    title: Promise | str
    counts: Promise | str
    unit: str
    base: str
    divisors: Callable[[Sequence[str]], dict[str, int]]
    windows: tuple[Window, ...] = ALL_WINDOWS

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key):
            raise ValueError(f"board source key {self.key!r} must look like 'app.thing'")


Source = BoardSource | RatioSource


@dataclass(frozen=True)
class Board:
    key: str
    source: Source
    window: Window

    @property
    def base(self) -> BoardSource:
        if isinstance(self.source, RatioSource):
            return _sources[self.source.base]  # type: ignore[return-value]
        return self.source

    @property
    def series(self) -> str:
        return self.base.key

    @property
    def title(self):
        return self.source.title

    def definition(self) -> dict:
        source = self.source
        return {
            "counts": str(source.counts),
            "unit": source.unit,
            "members": self.base.member_kind,
            "window": {"code": self.window.value, "description": str(self.window.label)},
            "ties": str(TIES),
            "derived_from": source.base if isinstance(source, RatioSource) else None,
        }


class DuplicateSource(ValueError):
    pass


_sources: dict[str, Source] = {}


def register(source: Source) -> Source:
    if source.key in _sources:
        raise DuplicateSource(f"board source {source.key!r} is registered twice")
    if isinstance(source, RatioSource) and source.base not in _sources:
        raise ValueError(f"{source.key!r} derives from {source.base!r}: register that first")
    _sources[source.key] = source
    return source


def unregister(key: str) -> None:
    """Tests that register a source of their own put things back with this."""
    del _sources[key]


def sources() -> tuple[Source, ...]:
    return tuple(_sources.values())


def series(key: str) -> BoardSource | None:
    found = _sources.get(key)
    return found if isinstance(found, BoardSource) else None


def boards() -> list[Board]:
    return [
        Board(f"{source.key}.{window.value}", source, window)
        for source in _sources.values()
        for window in source.windows
    ]


def board(key: str) -> Board | None:
    series_key, _sep, window = key.rpartition(".")
    source = _sources.get(series_key)
    if source is None or window not in [w.value for w in source.windows]:
        return None
    return Board(key, source, Window(window))


class UnknownBoard(DomainError):
    code = ErrorCode.UNKNOWN_BOARD


def board_get(key: str) -> Board:
    """The board of `key`, or UnknownBoard (404 unknown_board)."""
    found = board(key)
    if found is None:
        raise UnknownBoard(details={"board": key})
    return found


def boards_of_series(series_key: str) -> list[Board]:
    """The boards that read `series_key`, directly or derived from it."""
    return [b for b in boards() if b.series == series_key]
