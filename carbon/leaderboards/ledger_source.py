"""The core's boards, fed by the ledger: residents, communities and districts by grams
earned, and communities and districts by grams per resident.

What counts: awards credited to a resident, less reversals of them. A reversal takes its
grams back from the windows its award counted in (the award's date), so a board reconciles
with the ledger: a resident's all-time score is the `lifetime_g` of GET /me. Spends,
holds and expiry do not count: they are not un-earning.

Communities and districts count the grams of the residents who belong to them now: a
resident who moves takes their grams along, one who is erased leaves their community (and
stays on the residents' board as a row without a name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate
from django.utils.translation import gettext_lazy as _

from carbon.leaderboards import engine, registry
from carbon.leaderboards.registry import BoardSource, RatioSource, Who
from carbon.leaderboards.windows import city_zone
from carbon.models import Community, District, Transfer, TransferCode, User

RESIDENTS = "residents.grams"
COMMUNITIES = "communities.grams"
DISTRICTS = "districts.grams"

_GROUP_FIELD = {RESIDENTS: "id", COMMUNITIES: "community_id", DISTRICTS: "district_id"}


def _events(series: str) -> Iterable[tuple[str, object, int]]:
    field = _GROUP_FIELD[series]
    tz = city_zone()
    awards = (
        Transfer.objects.filter(code=TransferCode.AWARD, credit_account__user__isnull=False)
        .annotate(
            member=F(f"credit_account__user__{field}"), day=TruncDate("created_at", tzinfo=tz)
        )
        .filter(member__isnull=False)
        .values("member", "day")
        .annotate(grams=Sum("amount_g"))
    )
    # A reversal counts on its award's day.
    reversals = (
        Transfer.objects.filter(code=TransferCode.REVERSAL, debit_account__user__isnull=False)
        .annotate(
            member=F(f"debit_account__user__{field}"),
            day=TruncDate("reverses__created_at", tzinfo=tz),
        )
        .filter(member__isnull=False)
        .values("member", "day")
        .annotate(grams=Sum("amount_g"))
    )
    for row in awards.iterator(chunk_size=20_000):
        yield engine.member_key(row["member"]), row["day"], row["grams"]
    for row in reversals.iterator(chunk_size=20_000):
        yield engine.member_key(row["member"]), row["day"], -row["grams"]


def _ids(members: Sequence[str]) -> list[int]:
    return [int(m) for m in members if m.isdigit()]


def residents_describe(members: Sequence[str]) -> dict[str, Who]:
    """Rows of residents as every board shows them (a feature app's board of residents, a
    survey's observers, reuses it): no name for an erased resident."""
    found = {}
    for user in User.objects.filter(pk__in=_ids(members)).values(
        "pk", "display_name", "erased_at", "community__name", "district__name"
    ):
        erased = user["erased_at"] is not None
        found[engine.member_key(user["pk"])] = Who(
            name=None if erased else (user["display_name"] or None),
            community=None if erased else user["community__name"],
            district=None if erased else user["district__name"],
        )
    return found


def _describe_communities(members: Sequence[str]) -> dict[str, Who]:
    return {
        engine.member_key(c["pk"]): Who(name=c["name"], district=c["district__name"])
        for c in Community.objects.filter(pk__in=_ids(members)).values(
            "pk", "name", "district__name"
        )
    }


def _describe_districts(members: Sequence[str]) -> dict[str, Who]:
    return {
        engine.member_key(d["pk"]): Who(name=d["name"])
        for d in District.objects.filter(pk__in=_ids(members)).values("pk", "name")
    }


def _residents_per(field: str):
    def divisors(members: Sequence[str]) -> dict[str, int]:
        counts = (
            User.objects.residents()
            .filter(**{f"{field}__in": _ids(members)})
            .values(field)
            .annotate(n=Count("pk"))
        )
        return {engine.member_key(row[field]): row["n"] for row in counts}

    return divisors


def resident_member(user) -> str | None:
    """The member key of a signed-in resident on a board of residents."""
    return engine.member_key(user.pk) if getattr(user, "pk", None) is not None else None


def _member(field: str):
    def of_user(user) -> str | None:
        value = getattr(user, field, None)
        return engine.member_key(value) if value is not None else None

    return of_user


_COUNTS = _(
    "Grams of CO2e credited to residents for green behaviours (awards), less any award "
    "reversed; a reversal counts on the day of its award. Spending and expiry do not count."
)
_GROUP_COUNTS = _(
    "The grams of the residents who belong to it now (awards less reversals, as on the "
    "residents' board): a resident who moves takes their grams along."
)
_PER_RESIDENT = _(
    "Its grams (as on the board of totals) divided by its current number of active "
    "residents, rounded down, so a large district does not win by size alone."
)

SOURCES = (
    BoardSource(
        key=RESIDENTS,
        title=_("Residents by grams earned"),
        counts=_COUNTS,
        unit="g",
        member_kind="resident",
        events=lambda: _events(RESIDENTS),
        describe=residents_describe,
        member_of_user=_member("pk"),
    ),
    BoardSource(
        key=COMMUNITIES,
        title=_("Communities by grams earned"),
        counts=_GROUP_COUNTS,
        unit="g",
        member_kind="community",
        events=lambda: _events(COMMUNITIES),
        describe=_describe_communities,
        member_of_user=_member("community_id"),
    ),
    BoardSource(
        key=DISTRICTS,
        title=_("Districts by grams earned"),
        counts=_GROUP_COUNTS,
        unit="g",
        member_kind="district",
        events=lambda: _events(DISTRICTS),
        describe=_describe_districts,
        member_of_user=_member("district_id"),
    ),
    RatioSource(
        key="communities.grams_per_resident",
        title=_("Communities by grams per resident"),
        counts=_PER_RESIDENT,
        unit="g",
        base=COMMUNITIES,
        divisors=_residents_per("community_id"),
    ),
    RatioSource(
        key="districts.grams_per_resident",
        title=_("Districts by grams per resident"),
        counts=_PER_RESIDENT,
        unit="g",
        base=DISTRICTS,
        divisors=_residents_per("district_id"),
    ),
)


def register_sources() -> None:
    for source in SOURCES:
        registry.register(source)


# --- the ledger's feed (called after commit by carbon.services.realtime) -----------------


def ledger_credits_record(
    *,
    entries: Sequence[tuple[int, int, datetime]],
    groups: dict[int, tuple[int | None, int | None]] | None = None,
    touch: Sequence[str] = (),
) -> None:
    """(user id, signed grams, the day it counts on) for awards and reversals just committed.

    `groups`: user id -> (community id, district id) when the caller read them with its
    write (the ledger's award statement does), which saves reading them again here.
    `touch`: more topics to mark changed in the same write (the residents' balances)."""
    if not entries:
        engine.boards_record(entries={}, touch=touch)
        return
    wanted = {e[0] for e in entries}
    known = {
        pk: {"pk": pk, "community_id": g[0], "district_id": g[1]}
        for pk, g in (groups or {}).items()
        if pk in wanted
    }
    if len(known) < len(wanted):
        known |= {
            u["pk"]: u
            for u in User.objects.filter(pk__in=wanted - set(known)).values(
                "pk", "community_id", "district_id"
            )
        }
    by_series = {}
    for series, field in (
        (RESIDENTS, "pk"),
        (COMMUNITIES, "community_id"),
        (DISTRICTS, "district_id"),
    ):
        rows = []
        for user_id, grams, at in entries:
            value = known.get(user_id, {}).get(field)
            if value is not None:
                rows.append((engine.member_key(value), grams, at))
        by_series[series] = rows
    engine.boards_record(entries=by_series, touch=touch)


def resident_groups_moved(
    *, user_id: int, old: tuple[int | None, int | None], new: tuple[int | None, int | None]
) -> None:
    """A resident changed community (or was erased): their grams follow them."""
    member = engine.member_key(user_id)
    for index, series in ((0, COMMUNITIES), (1, DISTRICTS)):
        engine.board_move(
            series=RESIDENTS,
            member=member,
            to_series=series,
            old=engine.member_key(old[index]) if old[index] is not None else None,
            new=engine.member_key(new[index]) if new[index] is not None else None,
        )
    engine.topics_touch(
        topics=[engine.board_topic(b.key) for b in registry.boards_of_series(RESIDENTS)]
    )
