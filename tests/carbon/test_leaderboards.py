"""The leaderboard engine on both backends: what the ledger feeds in, ranks and ties,
communities and districts, moves and erasure, windows and their roll-over, a registered
source of a feature app (test-only here), and a rebuild that equals the live boards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils.translation import gettext_lazy as _

from carbon.leaderboards import engine, registry
from carbon.leaderboards.registry import BoardSource, Who
from carbon.leaderboards.windows import city_zone, local_date
from carbon.services.ledger import balance_for_user, ledger_reverse
from carbon.services.people import resident_update, user_erase
from tests.carbon.factories import CommunityFactory, DistrictFactory, UserFactory
from tests.carbon.leaderboard_helpers import award, board_backend, every_board, reading

__all__ = ["board_backend"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def city():
    east, west = DistrictFactory(name="East"), DistrictFactory(name="West")
    return {
        "east-1": CommunityFactory(name="East One", district=east),
        "east-2": CommunityFactory(name="East Two", district=east),
        "west-1": CommunityFactory(name="West One", district=west),
    }


def resident(name, community):
    return UserFactory(display_name=name, community=community, district=community.district)


def test_awards_rank_residents_ties_share_a_rank_and_reversals_take_back(
    board_backend, city, django_capture_on_commit_callbacks
):
    ann = resident("Ann", city["east-1"])
    bo = resident("Bo", city["east-1"])
    cy = resident("Cy", city["west-1"])
    with django_capture_on_commit_callbacks(execute=True):
        award(ann, 300)
        second = award(bo, 200)
        award(bo, 300)
        award(cy, 300)

    # Bo 500; Ann and Cy tie at 300 and share rank 2, the later resident (Cy) listed first.
    assert reading("residents.grams.all") == [(1, 500, "Bo"), (2, 300, "Cy"), (2, 300, "Ann")]

    with django_capture_on_commit_callbacks(execute=True):
        ledger_reverse(transfer_id=second.pk, reason="duplicate", actor=None)
    assert reading("residents.grams.all") == [(1, 300, "Cy"), (1, 300, "Bo"), (1, 300, "Ann")]
    # The board reconciles with the ledger: each score is the resident's lifetime grams.
    for user in (ann, bo, cy):
        assert balance_for_user(user=user).lifetime_g == 300
    for window in ("week", "month", "7d", "30d"):
        assert reading(f"residents.grams.{window}") == reading("residents.grams.all")


def test_communities_and_districts_by_total_and_per_resident(
    board_backend, city, django_capture_on_commit_callbacks
):
    big = [resident(f"E{i}", city["east-1"]) for i in range(4)]
    small = resident("W", city["west-1"])
    with django_capture_on_commit_callbacks(execute=True):
        for user in big:
            award(user, 100)
        award(small, 250)

    assert reading("communities.grams.all") == [(1, 400, "East One"), (2, 250, "West One")]
    assert reading("districts.grams.all") == [(1, 400, "East"), (2, 250, "West")]
    # Per resident the small community wins: 250 / 1 against 400 / 4.
    assert reading("communities.grams_per_resident.all") == [
        (1, 250, "West One"),
        (2, 100, "East One"),
    ]
    assert reading("districts.grams_per_resident.7d") == [(1, 250, "West"), (2, 100, "East")]


def test_a_resident_who_moves_takes_their_grams_and_an_erased_one_loses_their_name(
    board_backend, city, django_capture_on_commit_callbacks
):
    ann = resident("Ann", city["east-1"])
    bo = resident("Bo", city["east-2"])
    with django_capture_on_commit_callbacks(execute=True):
        award(ann, 300)
        award(bo, 100)
    with django_capture_on_commit_callbacks(execute=True):
        resident_update(user=ann, community=city["west-1"].code)
    assert reading("communities.grams.all") == [(1, 300, "West One"), (2, 100, "East Two")]
    assert reading("districts.grams.week") == [(1, 300, "West"), (2, 100, "East")]

    with django_capture_on_commit_callbacks(execute=True):
        user_erase(user=ann)
    # Still on the residents' board (the ledger keeps the grams), without a name or place;
    # gone from the community and district boards.
    board = registry.board("residents.grams.all")
    rows = engine.board_top(board=board, limit=10)
    assert [(r.rank, r.score, r.who) for r in rows] == [
        (1, 300, Who(name=None, community=None, district=None)),
        (2, 100, Who(name="Bo", community="East Two", district="East")),
    ]
    assert reading("communities.grams.all") == [(1, 100, "East Two")]
    assert reading("districts.grams.all") == [(1, 100, "East")]


def test_a_rebuilt_board_equals_the_live_one(
    board_backend, city, django_capture_on_commit_callbacks
):
    users = [resident(f"R{i}", list(city.values())[i % 3]) for i in range(9)]
    # Each write commits (and feeds the boards) before the next, as requests do.
    awards = []
    for i, user in enumerate(users):
        with django_capture_on_commit_callbacks(execute=True):
            awards.append(award(user, 50 * (i % 4 + 1)))
    for act in (
        lambda: award(users[0], 75),
        lambda: ledger_reverse(transfer_id=awards[3].pk, reason="fraud", actor=None),
        lambda: resident_update(user=users[1], community=city["west-1"].code),
        lambda: user_erase(user=users[2]),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            act()
    live = every_board()
    assert live["residents.grams.all"][0][1] == 200  # R7 (R3 had 200, reversed)
    assert (2, 150, None) in live["residents.grams.all"]  # R2, erased

    call_command("leaderboards_rebuild", verbosity=0)
    assert every_board() == live

    # One board, by key: its series is rebuilt, the result the same.
    call_command("leaderboards_rebuild", "communities.grams.7d", verbosity=0)
    assert every_board() == live


def test_around_me_gives_my_rank_and_my_neighbours(
    board_backend, city, django_capture_on_commit_callbacks
):
    users = [resident(f"R{i}", city["east-1"]) for i in range(10)]
    with django_capture_on_commit_callbacks(execute=True):
        for i, user in enumerate(users):
            award(user, 100 * (i + 1))  # R9 first with 1000, R0 last with 100
    board = registry.board("residents.grams.all")
    rows, me = engine.board_around(
        board=board, member=engine.member_key(users[4].pk), before=2, after=2
    )
    assert (me.rank, me.score) == (6, 500)
    assert [(r.rank, r.who.name) for r in rows] == [
        (4, "R6"),
        (5, "R5"),
        (6, "R4"),
        (7, "R3"),
        (8, "R2"),
    ]
    # At the bottom there is nobody below me.
    rows, me = engine.board_around(
        board=board, member=engine.member_key(users[0].pk), before=1, after=3
    )
    assert me.rank == 10 and [r.rank for r in rows] == [9, 10]
    # Someone with no grams is not on the board: the top rows and no row of theirs.
    newcomer = resident("New", city["east-1"])
    rows, me = engine.board_around(
        board=board, member=engine.member_key(newcomer.pk), before=1, after=1
    )
    assert me is None and [r.rank for r in rows] == [1, 2, 3]


# --- windows, roll-over and a registered source ---------------------------------------------

EVENTS: list[tuple[str, date, int]] = []


def _describe(members):
    return {m: Who(name=f"Cell {int(m)}") for m in members}


TEST_SOURCE = BoardSource(
    key="testapp.votes",
    title=_("Test votes"),
    counts=_("Votes"),
    unit="votes",
    member_kind="cell",
    events=lambda: list(EVENTS),
    describe=_describe,
)


@pytest.fixture
def test_source():
    EVENTS.clear()
    registry.register(TEST_SOURCE)
    yield TEST_SOURCE
    registry.unregister(TEST_SOURCE.key)
    EVENTS.clear()


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=city_zone())


def record(member: int, day: date, amount: int, hour: int = 12) -> None:
    EVENTS.append((engine.member_key(member), at(day, hour).date(), amount))
    engine.board_record(
        series="testapp.votes", entries=[(engine.member_key(member), amount, at(day, hour))]
    )


def test_a_registered_source_gets_boards_with_published_definitions(board_backend, test_source):
    keys = [b.key for b in registry.boards() if b.series == "testapp.votes"]
    assert keys == [f"testapp.votes.{w}" for w in ("all", "week", "month", "7d", "30d")]
    definition = registry.board("testapp.votes.7d").definition()
    assert definition["unit"] == "votes" and definition["members"] == "cell"
    assert definition["window"]["code"] == "7d" and "7 days" in definition["window"]["description"]
    assert "Equal scores share a rank" in definition["ties"]
    assert registry.board("testapp.votes.year") is None
    with pytest.raises(registry.DuplicateSource):
        registry.register(TEST_SOURCE)


def test_windows_follow_city_days_and_a_rollover_equals_a_rebuild(board_backend, test_source):
    today = local_date()
    # Members 1..4: today, 3 days ago, 10 days ago, 40 days ago.
    record(1, today, 5)
    record(2, today - timedelta(days=3), 7)
    record(3, today - timedelta(days=10), 9)
    record(4, today - timedelta(days=40), 11)
    assert reading("testapp.votes.all") == [
        (1, 11, "Cell 4"),
        (2, 9, "Cell 3"),
        (3, 7, "Cell 2"),
        (4, 5, "Cell 1"),
    ]
    assert reading("testapp.votes.7d") == [(1, 7, "Cell 2"), (2, 5, "Cell 1")]
    assert reading("testapp.votes.30d") == [(1, 9, "Cell 3"), (2, 7, "Cell 2"), (3, 5, "Cell 1")]

    # City midnight, not UTC's: 23:30 in the city is still that day (15:30 UTC).
    late = today - timedelta(days=6)
    record(5, late, 1, hour=23)
    assert reading("testapp.votes.7d") == [(1, 7, "Cell 2"), (2, 5, "Cell 1"), (3, 1, "Cell 5")]

    # Five days on: the roll-over drops the days that left each window; a board rebuilt
    # for that day reads the same.
    later = today + timedelta(days=5)
    engine.boards_roll(today=later)
    backend = board_backend
    rolled = {b: backend.scores(series="testapp.votes", bucket=b) for b in ("r7", "r30", "all")}
    assert rolled["r7"] == {engine.member_key(1): 5}
    assert set(rolled["r30"]) == {engine.member_key(m) for m in (1, 2, 3, 5)}
    engine.series_rebuild(series="testapp.votes", today=later)
    assert {b: backend.scores(series="testapp.votes", bucket=b) for b in rolled} == rolled
    # Rolling again the same day changes nothing.
    engine.boards_roll(today=later)
    assert backend.scores(series="testapp.votes", bucket="r7") == rolled["r7"]


def test_a_board_failure_never_fails_the_write(settings, city, django_capture_on_commit_callbacks):
    settings.LEADERBOARD_BACKEND = "redis"
    settings.LEADERBOARD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    from carbon.leaderboards.backends import reset_backends

    reset_backends()
    ann = resident("Ann", city["east-1"])
    with django_capture_on_commit_callbacks(execute=True):
        award(ann, 100)
    assert balance_for_user(user=ann).lifetime_g == 100
    settings.LEADERBOARD_BACKEND = "database"
    reset_backends()


def test_week_and_month_boards_read_the_current_period(board_backend, test_source):
    today = local_date()
    monday = today - timedelta(days=today.weekday())
    record(1, monday, 3)
    record(2, monday - timedelta(days=1), 4)  # last Sunday: last week
    assert reading("testapp.votes.week") == [(1, 3, "Cell 1")]
    first = today.replace(day=1)
    expected_month = [(1, 3, "Cell 1")] if monday >= first else []
    if monday - timedelta(days=1) >= first:
        expected_month = [(1, 4, "Cell 2"), (2, 3, "Cell 1")]
    assert reading("testapp.votes.month") == expected_month


def test_now_is_city_time(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    utc_evening = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)  # 01:00 on the 4th
    assert local_date(utc_evening) == date(2026, 12, 4)


def test_windows_roll_over_on_the_beat_and_production_broadcasts_over_pub_sub(settings):
    from carbon import tasks

    job = settings.CELERY_BEAT_SCHEDULE["leaderboards-roll"]
    assert job["task"] == "carbon.tasks.roll_leaderboards"
    assert tasks.roll_leaderboards.name == job["task"]
    if settings.REDIS_URL:
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("RedisPubSubChannelLayer")
        assert settings.LEADERBOARD_BACKEND == "redis"
    else:
        assert settings.LEADERBOARD_BACKEND == "database"


def test_ranks_and_neighbours_hold_under_random_writes(board_backend, test_source):
    """Ranks (the database backend's band counts), counts above a score and the rows around a
    member agree with a plain sort of the board, after adds, set scores, moves back to zero,
    negative moves and a rebuild, on both backends."""
    import random

    from carbon.leaderboards.backends import ScoreChange

    rng = random.Random(7)
    backend = board_backend
    truth: dict[str, int] = {}
    today = local_date()
    for step in range(400):
        member = engine.member_key(rng.randrange(60))
        delta = rng.choice([1, 2, 5, 100, 127, 128, 129, 4000, 70_000, -1, -100, -4000])
        if step % 37 == 36:  # a recount sets the score (0 removes the member)
            value = rng.choice([0, 3, 130, 9000])
            backend.put(series="testapp.votes", bucket="all", scores={member: value})
            truth[member] = value
            if not value:
                del truth[member]
            continue
        if step % 50 == 49:  # back to exactly zero: the row (and its band count) goes
            delta = -truth.get(member, 0) or 1
        backend.apply(
            changes=[ScoreChange("testapp.votes", member, today, delta, ("all",))], starts={}
        )
        truth[member] = truth.get(member, 0) + delta
        if not truth[member]:
            del truth[member]

    def check():
        order = sorted(truth.items(), key=lambda r: (r[1], r[0]), reverse=True)
        assert backend.top(series="testapp.votes", bucket="all", offset=0, limit=100) == order
        assert backend.size(series="testapp.votes", bucket="all") == len(order)
        for position, (member, score) in enumerate(order):
            found = backend.position(series="testapp.votes", bucket="all", member=member)
            assert found == position
            above = sum(1 for _m, s in order if s > score)
            assert backend.count_above(series="testapp.votes", bucket="all", score=score) == above
            rows, first = backend.around(
                series="testapp.votes", bucket="all", member=member, before=3, after=2
            )
            assert first == max(0, position - 3)
            assert rows == order[first : position + 3]

    check()
    backend.replace(series="testapp.votes", buckets={"all": dict(truth)}, markers={})
    check()
    engine.boards_roll()  # touches, drops nothing kept: ranks unchanged
    check()
