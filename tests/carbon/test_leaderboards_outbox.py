"""How board writes leave a write path after commit: through this process's outbox on
Redis (merged, sent by a background thread, bounded, flushed on demand and at exit, a
failure never failing a write), and in a fixed number of statements on the database."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from carbon.leaderboards import engine, publisher
from carbon.leaderboards.backends import ScoreChange, get_backend
from carbon.leaderboards.backends.database import DatabaseBackend
from carbon.leaderboards.bands import score_band
from carbon.leaderboards.ledger_source import COMMUNITIES, DISTRICTS, RESIDENTS
from carbon.leaderboards.models import BoardBand, BoardScore
from carbon.leaderboards.windows import local_date
from carbon.services.ledger import ledger_reverse
from carbon.services.people import resident_update
from tests.carbon.factories import CommunityFactory, DistrictFactory, UserFactory
from tests.carbon.leaderboard_helpers import award, board_backend, every_board

__all__ = ["board_backend"]

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def city():
    east, west = DistrictFactory(name="East"), DistrictFactory(name="West")
    return {
        "east": CommunityFactory(name="East One", district=east),
        "west": CommunityFactory(name="West One", district=west),
    }


def resident(name, community):
    return UserFactory(display_name=name, community=community, district=community.district)


@pytest.fixture
def outbox(settings):
    """Redis through the outbox, with a linger long enough that only a flush, a read, the
    limit or the exit sends (the thread would wait a minute)."""
    settings.LEADERBOARD_BACKEND = "redis"
    settings.LEADERBOARD_PUBLISH_SECONDS = 60
    settings.LEADERBOARD_PUBLISH_LIMIT = 5000
    from carbon.leaderboards.backends import reset_backends

    reset_backends()
    engine.forget_process_state()
    backend = get_backend()
    backend.flush_all()
    yield backend
    engine.forget_process_state()
    backend.flush_all()
    reset_backends()


def score(backend, member_pk, series=RESIDENTS):
    return backend.score(series=series, bucket="all", member=engine.member_key(member_pk))


def spy_round_trips(monkeypatch, backend) -> list[tuple]:
    """What reaches the real Redis, in order: each command sent on its own (its name and
    first key), ("PIPELINE", n commands) for each pipeline sent, and ("send", scores) /
    ("sent",) around each send of the outbox (wrapping the real ones, nothing mocked)."""
    log: list[tuple] = []
    client = backend.redis
    real_execute = client.execute_command

    def execute_command(*args, **options):
        log.append((str(args[0]).upper(), *([str(args[1])] if len(args) > 1 else [])))
        return real_execute(*args, **options)

    real_pipeline_execute = redis.client.Pipeline.execute

    def pipeline_execute(self, *args, **kwargs):
        log.append(("PIPELINE", len(self.command_stack)))
        return real_pipeline_execute(self, *args, **kwargs)

    box = publisher._get()
    real_send = box._send

    def send(outgoing):
        log.append(("send", dict(outgoing.scores)))
        try:
            return real_send(outgoing)
        finally:
            log.append(("sent",))

    monkeypatch.setattr(client, "execute_command", execute_command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline_execute)
    monkeypatch.setattr(box, "_send", send)
    return log


@pytest.mark.redis
def test_the_outbox_merges_transactions_keeps_order_and_equals_a_rebuild(
    outbox, city, django_capture_on_commit_callbacks, monkeypatch
):
    ann, bo = resident("Ann", city["east"]), resident("Bo", city["east"])
    # The script known to the server beforehand: a first EVALSHA on a fresh server would
    # load it (SCRIPT LOAD and EVALSHA again), a round trip that is not the outbox's.
    outbox.redis.script_load(outbox._apply.script)
    round_trips = spy_round_trips(monkeypatch, outbox)
    first = None
    for user, grams in ((ann, 100), (bo, 40), (ann, 60)):
        with django_capture_on_commit_callbacks(execute=True):
            made = award(user, grams)
        first = first or made
    # A transaction rolled back, and a savepoint rolled back in a committed one: nothing.
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            try:
                with transaction.atomic():
                    award(bo, 999)
                    raise RuntimeError("the claim failed after its award")
            except RuntimeError:
                pass
            award(bo, 5)
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            award(ann, 777)
            raise RuntimeError
    with django_capture_on_commit_callbacks(execute=True):
        ledger_reverse(transfer_id=first.pk, reason="duplicate", actor=None)

    # Committed, announced, not sent: the writes wait in the outbox, merged.
    assert score(outbox, ann.pk) is None
    assert not outbox.redis.smembers("lb:dirty")
    assert not [t for t in round_trips if t[0] not in ("ZSCORE", "SMEMBERS")]

    # Ann moves: the move reads her score, so her awards before it are sent first.
    del round_trips[:]
    with django_capture_on_commit_callbacks(execute=True):
        resident_update(user=ann, community=city["west"].code)
    # ... in ONE send, as ONE write to Redis: the five committed transactions' increments
    # merged per (series, member, day), the touches with them. Before its write the send
    # may read the rolling markers (once a day per series and process: the roll-over check).
    assert round_trips[0][0] == "send"
    first = round_trips[: round_trips.index(("sent",)) + 1]
    today = local_date()
    ann_key, bo_key = engine.member_key(ann.pk), engine.member_key(bo.pk)
    east, district = engine.member_key(city["east"].pk), engine.member_key(city["east"].district_id)
    assert first[0][1] == {
        (RESIDENTS, ann_key, today): 60,  # 100 + 60, less the 100 reversed
        (RESIDENTS, bo_key, today): 45,  # 40 + 5
        (COMMUNITIES, east, today): 105,
        (DISTRICTS, district, today): 105,
    }
    writes = [t for t in first[1:-1] if not (t[0] == "GET" and ":mark:" in t[1])]
    assert [t[0] for t in writes] == ["EVALSHA"], first
    assert score(outbox, ann.pk) == 60
    assert score(outbox, bo.pk) == 45
    assert score(outbox, city["west"].pk, COMMUNITIES) == 60
    assert score(outbox, city["east"].pk, COMMUNITIES) == 45
    dirty = outbox.redis.smembers("lb:dirty")
    assert {f"balance:{ann.pk}", f"balance:{bo.pk}"} <= dirty
    assert "board:residents.grams.all" in dirty and "board:communities.grams.7d" in dirty

    live = every_board()
    from django.core.management import call_command

    call_command("leaderboards_rebuild", verbosity=0)
    assert every_board() == live


@pytest.mark.redis
def test_a_read_sends_this_process_pending_writes_first(
    outbox, city, django_capture_on_commit_callbacks
):
    ann = resident("Ann", city["east"])
    with django_capture_on_commit_callbacks(execute=True):
        award(ann, 30)
    assert score(outbox, ann.pk) is None
    assert every_board()["residents.grams.all"] == [(1, 30, "Ann")]


@pytest.mark.redis
def test_the_background_thread_sends_without_anyone_asking(
    outbox, settings, city, django_capture_on_commit_callbacks
):
    settings.LEADERBOARD_PUBLISH_SECONDS = 0.01
    ann = resident("Ann", city["east"])
    with django_capture_on_commit_callbacks(execute=True):
        award(ann, 30)
    deadline = time.monotonic() + 10
    while score(outbox, ann.pk) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert score(outbox, ann.pk) == 30


@pytest.mark.redis
def test_the_outbox_is_bounded_the_writer_sends_at_the_limit(
    outbox, settings, city, django_capture_on_commit_callbacks
):
    # An award is 3 score changes (resident, community, district): the second reaches 6.
    settings.LEADERBOARD_PUBLISH_LIMIT = 6
    ann, bo = resident("Ann", city["east"]), resident("Bo", city["west"])
    with django_capture_on_commit_callbacks(execute=True):
        award(ann, 10)
    assert score(outbox, ann.pk) is None
    with django_capture_on_commit_callbacks(execute=True):
        award(bo, 20)
    assert (score(outbox, ann.pk), score(outbox, bo.pk)) == (10, 20)


@pytest.mark.redis
def test_a_failed_send_fails_no_write_and_the_next_one_goes_through(
    outbox, city, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    import redis

    from carbon.leaderboards.backends.redis import _APPLY

    ann = resident("Ann", city["east"])
    # A real outage: the backend's client pointed at a port nothing listens on.
    down = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    monkeypatch.setattr(outbox, "redis", down)
    monkeypatch.setattr(outbox, "_apply", down.register_script(_APPLY))
    with django_capture_on_commit_callbacks(execute=True):
        award(ann, 10)  # committed and announced: no error for the writer
    with caplog.at_level(logging.WARNING, logger="carbon.leaderboards.engine"):
        engine.outbox_flush()
    assert "update failed" in caplog.text
    monkeypatch.undo()

    with django_capture_on_commit_callbacks(execute=True):
        award(ann, 5)
    engine.outbox_flush()
    # The failed send was dropped (a rebuild repairs it), as an inline write's would be.
    assert score(outbox, ann.pk) == 5


@pytest.mark.redis
def test_a_forked_child_starts_with_an_empty_outbox(
    outbox, city, django_capture_on_commit_callbacks
):
    ann = resident("Ann", city["east"])
    with django_capture_on_commit_callbacks(execute=True):
        award(ann, 15)  # pending in the parent's outbox, not sent yet
    assert score(outbox, ann.pk) is None or score(outbox, ann.pk) == 0
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        # Whatever happens here, the child ends here: it must never go on running the rest
        # of the test session beside its parent.
        try:
            os.close(read)
            empty = publisher._outbox is None
            # Had the child kept the parent's pending writes, this would send them again.
            engine.outbox_flush()
            os.write(write, b"1" if empty else b"0")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)
    # The parent still has its own and sends them, once.
    engine.outbox_flush()
    assert score(outbox, ann.pk) == 15


def test_the_exit_flush_gives_up_on_a_send_that_hangs(settings, monkeypatch, caplog):
    """A Redis that stops answering must not hang the process on its way out: the exit
    handler waits for the send under way at most EXIT_WAIT_SECONDS (here the sender is
    blocked by the test, standing in for a network cut)."""
    import threading

    settings.LEADERBOARD_PUBLISH_SECONDS = 0
    release, started, sent = threading.Event(), threading.Event(), []

    def hanging_send(outgoing):
        started.set()
        release.wait(30)
        sent.append(set(outgoing.topics))

    box = publisher.Outbox(hanging_send)
    monkeypatch.setattr(publisher, "_outbox", box)  # the process's outbox, as at exit
    monkeypatch.setattr(publisher, "EXIT_WAIT_SECONDS", 0.2)
    box.put(rows=[], windows={}, topics=["balance:1"])  # the thread takes it and hangs
    assert started.wait(10)
    box.put(rows=[], windows={}, topics=["balance:2"])
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=publisher.log.name):
        publisher._flush_at_exit()  # what atexit and Celery's shutdown signal call
    assert time.monotonic() - began < 5  # not the 30 s the send hangs
    assert "pending writes dropped" in caplog.text
    release.set()
    assert box.flush() is True  # once the send ends, what waited goes out
    assert sent == [{"balance:1"}, {"balance:2"}]


@pytest.mark.redis
def test_a_process_sends_its_pending_writes_when_it_exits(outbox):
    topic = "balance:737373"
    code = (
        "import django; django.setup()\n"
        "from carbon.leaderboards import engine\n"
        f"engine.topics_touch(topics=[{topic!r}])\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "REDIS_URL": django_settings.REDIS_URL,
        "LEADERBOARD_BACKEND": "redis",
        "LEADERBOARD_PUBLISH_SECONDS": "60",  # only the exit can send it in time
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    assert topic in outbox.redis.smembers("lb:dirty")


# --- the database backend: a fixed number of statements ----------------------------------


def test_a_database_write_is_a_fixed_number_of_statements_and_equals_a_rebuild(
    settings, city, django_capture_on_commit_callbacks
):
    settings.LEADERBOARD_BACKEND = "database"
    users = [resident(f"R{i}", city["east" if i % 2 else "west"]) for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        first = award(users[0], 50)  # first writes: rows, markers and bands created
    counts = []
    for user, grams in ((users[0], 20), (users[1], 30), (users[2], 40)):
        with django_capture_on_commit_callbacks() as callbacks:
            award(user, grams)
        with CaptureQueriesContext(connection) as statements:
            for callback in callbacks:
                callback()
        counts.append([q["sql"].split()[0] for q in statements.captured_queries])
    # Three series (resident, community, district) in six buckets each, and five topics: a
    # savepoint (the test's transaction; a transaction of its own in production) around
    # the markers of every series (one read), every score (one upsert) and the bands, then
    # the touch. Was 33.
    expected = ["SAVEPOINT", "SELECT", "INSERT", "INSERT", "RELEASE", "INSERT"]
    if connection.vendor != "postgresql":  # the groups: PostgreSQL's award statement reads them
        expected = ["SELECT", *expected]
    assert counts == [expected] * 3
    with django_capture_on_commit_callbacks(execute=True):
        ledger_reverse(transfer_id=first.pk, reason="duplicate", actor=None)  # R0 back to 20

    live = every_board()
    rows = sorted(BoardScore.objects.values_list("series", "bucket", "member", "score"))
    bands = sorted(
        BoardBand.objects.exclude(count=0).values_list("series", "bucket", "band", "count")
    )
    assert not any(score == 0 for *_key, score in rows)
    from django.core.management import call_command

    call_command("leaderboards_rebuild", verbosity=0)
    assert every_board() == live
    assert sorted(BoardScore.objects.values_list("series", "bucket", "member", "score")) == rows
    assert (
        sorted(BoardBand.objects.exclude(count=0).values_list("series", "bucket", "band", "count"))
        == bands
    )


def test_a_database_reversal_is_a_fixed_number_of_statements_and_empties_in_one(
    settings, city, django_capture_on_commit_callbacks
):
    """A reversal that brings rows to 0 (here every row of a resident alone in her
    community and district: three series, six buckets each) deletes them in one statement,
    not one each (was 18 deletes)."""
    settings.LEADERBOARD_BACKEND = "database"
    ann = resident("Ann", city["east"])
    with django_capture_on_commit_callbacks(execute=True):
        first = award(ann, 50)
    assert BoardScore.objects.count() == 18
    with django_capture_on_commit_callbacks() as callbacks:
        ledger_reverse(transfer_id=first.pk, reason="duplicate", actor=None)
    with CaptureQueriesContext(connection) as statements:
        for callback in callbacks:
            callback()
    # The resident's groups (a reversal does not read them with its write), then as an
    # award: the markers, the scores, the emptied rows, the bands; then the touch.
    assert [q["sql"].split()[0] for q in statements.captured_queries] == [
        "SELECT",
        "SAVEPOINT",
        "SELECT",
        "INSERT",
        "DELETE",
        "INSERT",
        "RELEASE",
        "INSERT",
    ]
    assert not BoardScore.objects.exists()
    assert not BoardBand.objects.exclude(count=0).exists()
    assert all(rows == [] for rows in every_board().values())


@pytest.mark.parametrize("members", [3, 40])
def test_a_database_roll_over_is_a_fixed_number_of_statements(settings, members):
    """The roll-over takes the days that left a rolling sum off it set-based, as a write
    adds: the same statements for 3 members as for 40 (it was an update per member, and a
    delete per member brought to 0)."""
    backend = DatabaseBackend()
    series, day0 = "testapp.roll", date(2026, 3, 1)
    changes = []
    for i in range(members):
        member = f"{i:012d}"
        # Every member has grams on day 0 and day 1, which leave the window; one in two
        # also on day 3, which stays: the others come back to 0 and leave the sum.
        for offset in (0, 1, 3) if i % 2 else (0, 1):
            day = day0 + timedelta(days=offset)
            changes.append(ScoreChange(series, member, day, 10 + i, (f"d:{day.isoformat()}",)))
    backend.apply(changes=changes, starts={"r7": day0})
    with CaptureQueriesContext(connection) as statements:
        backend.roll(series=series, bucket="r7", new_start=day0 + timedelta(days=2))
    # The marker (locked), the days leaving (one read), the scores (one upsert), the rows
    # brought to 0 (one delete), the bands (one), the marker moved.
    assert [q["sql"].split()[0] for q in statements.captured_queries] == [
        "SAVEPOINT",
        "SELECT",
        "SELECT",
        "INSERT",
        "DELETE",
        "INSERT",
        "UPDATE",
        "RELEASE",
    ]
    kept = {f"{i:012d}": 10 + i for i in range(members) if i % 2}
    assert backend.scores(series=series, bucket="r7") == kept
    assert backend.marker(series=series, bucket="r7") == day0 + timedelta(days=2)
    bands = {
        band: n
        for band, n in BoardBand.objects.filter(series=series, bucket="r7").values_list(
            "band", "count"
        )
        if n
    }
    assert bands == dict(Counter(score_band(s) for s in kept.values()))
    for position, member in enumerate(sorted(kept, key=lambda m: (kept[m], m), reverse=True)):
        assert backend.position(series=series, bucket="r7", member=member) == position


@pytest.mark.redis
def test_a_celery_pool_process_sends_its_pending_writes_on_its_shutdown_signal(outbox):
    from celery.signals import worker_process_shutdown

    engine.topics_touch(topics=["balance:515151"])
    assert not outbox.redis.smembers("lb:dirty")
    worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
    assert "balance:515151" in outbox.redis.smembers("lb:dirty")
