"""The board registry: what each board counts, where its truth comes from, who its rows are.

A *series* is one score kept per member (residents' grams, a campaign's votes) in every
window bucket; a *board* is a series read in one window (`residents.grams.7d`). The core
registers its own series (carbon.leaderboards.ledger_source); a feature app registers the
series it feeds from its AppConfig.ready() and records its events with
`carbon.leaderboards.engine.board_record`. The core never imports a feature app.

A feature app with one board per thing it owns (a campaign, a survey project) registers a
*family* instead: `BoardFamily(key, scopes, source)`; the series of scope "12" is
`<family key>.12`, built on demand by `source("12")`, so a campaign created at run time has
its board without registering anything.

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

SCOPE_PATTERN = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class BoardFamily:
    """One series per scope (a campaign's id, a survey project's id), for a feature app whose
    boards come and go with its rows. `scopes()` lists the scopes that have a board now (a
    rebuild of everything and the roll-over walk them); `source(scope)` returns the scope's
    BoardSource, keyed `<key>.<scope>`, or None when there is no such scope."""

    key: str
    scopes: Callable[[], Iterable[str]]
    source: Callable[[str], BoardSource | None]

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key):
            raise ValueError(f"board family key {self.key!r} must look like 'app.thing'")


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
_families: dict[str, BoardFamily] = {}
# Bumped by every (un)registration: the engine keeps what it derives from a registered
# series (its windows, its boards' topics) until this moves.
_generation = 0


def generation() -> int:
    return _generation


def registered(key: str) -> bool:
    """A series registered as such (not one scope of a family, whose boards come and go with
    the feature app's rows)."""
    return key in _sources


def register(source: Source | BoardFamily) -> Source | BoardFamily:
    global _generation
    _generation += 1
    if source.key in _sources or source.key in _families:
        raise DuplicateSource(f"board source {source.key!r} is registered twice")
    if isinstance(source, BoardFamily):
        _families[source.key] = source
        return source
    if isinstance(source, RatioSource) and source.base not in _sources:
        raise ValueError(f"{source.key!r} derives from {source.base!r}: register that first")
    _sources[source.key] = source
    return source


def unregister(key: str) -> None:
    """Tests that register a source of their own put things back with this."""
    global _generation
    _generation += 1
    if key in _families:
        del _families[key]
    else:
        del _sources[key]


def _family_source(key: str) -> BoardSource | None:
    family_key, _sep, scope = key.rpartition(".")
    family = _families.get(family_key)
    if family is None or not SCOPE_PATTERN.match(scope):
        return None
    found = family.source(scope)
    if found is not None and found.key != key:
        raise ValueError(f"family {family_key!r} gave {found.key!r} for scope {scope!r}")
    return found


def _resolve(key: str) -> Source | None:
    found = _sources.get(key)
    return found if found is not None else _family_source(key)


def sources() -> tuple[Source, ...]:
    """Every source, with one per scope of each family (a query per family)."""
    scoped = [
        found
        for family in _families.values()
        for scope in family.scopes()
        if (found := family.source(str(scope))) is not None
    ]
    return (*_sources.values(), *scoped)


def series(key: str) -> BoardSource | None:
    found = _resolve(key)
    return found if isinstance(found, BoardSource) else None


def _boards_of(source: Source) -> list[Board]:
    return [Board(f"{source.key}.{w.value}", source, w) for w in source.windows]


def boards() -> list[Board]:
    return [b for source in sources() for b in _boards_of(source)]


def board(key: str) -> Board | None:
    series_key, _sep, window = key.rpartition(".")
    source = _resolve(series_key)
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
    """The boards that read `series_key`, directly or derived from it (without walking the
    families' scopes: a write to one campaign's series costs no query for the others)."""
    base = series(series_key)
    if base is None:
        return []
    derived = [s for s in _sources.values() if isinstance(s, RatioSource) and s.base == base.key]
    return [b for source in (base, *derived) for b in _boards_of(source)]
