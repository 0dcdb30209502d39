"""The leaderboard WebSocket through Channels' communicator, on the configured channel layer
(in-memory, or Redis pub/sub in the services pass) and both board backends: a snapshot on
subscribe, coalesced updates with sequence numbers, my own rank, snapshots on request, close
codes, and writes from threads without an event loop (as Celery workers make them)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.db import connections
from redis.connection import parse_url
from rest_framework_simplejwt.tokens import AccessToken

from carbon import tasks
from carbon.leaderboards import push
from carbon.leaderboards.push import push_loop_stop
from config.asgi import application
from config.channel_layers import channel_layers as deployment_layers
from tests.carbon.factories import CommunityFactory, UserFactory
from tests.carbon.leaderboard_helpers import award, board_backend

__all__ = ["board_backend"]

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")


@pytest.fixture(autouse=True)
def _fresh_channel_layer(settings):
    channel_layers.backends = {}
    settings.LEADERBOARD_POLL_SECONDS = 0.05
    settings.LEADERBOARD_PUSH_INTERVAL = 0.3
    yield
    channel_layers.backends = {}


def run_async(main):
    async def wrapper():
        try:
            return await main()
        finally:
            # This loop's push loop ends between rounds, before the loop closes; then the
            # executor thread's connections go back.
            await push_loop_stop()
            await sync_to_async(connections.close_all)()

    return asyncio.run(wrapper())


def socket(key: str, user=None, token: str | None = None) -> WebsocketCommunicator:
    if token is None and user is not None:
        token = str(AccessToken.for_user(user))
    query = f"?token={token}" if token is not None else ""
    return WebsocketCommunicator(application, f"/ws/v1/leaderboards/{key}{query}", headers=[ORIGIN])


async def receive_until(ws, kind: str, check, timeout: float = 5.0) -> dict:
    """The first message of `kind` that passes `check` (an earlier change may still be
    pushed first: the award made before subscribing)."""
    while True:
        message = await receive_type(ws, kind, timeout)
        if check(message):
            return message


async def receive_type(ws, kind: str, timeout: float = 5.0) -> dict:
    while True:
        message = await ws.receive_json_from(timeout=timeout)
        if message["type"] == kind:
            return message


@pytest.fixture
def people(db):
    community = CommunityFactory(name="Lakeside")
    make = lambda name: UserFactory(  # noqa: E731
        display_name=name, community=community, district=community.district
    )
    return make("Ann"), make("Bo")


def test_snapshot_on_subscribe_then_numbered_updates_and_my_rank(board_backend, people):
    ann, bo = people
    award(ann, 300)

    async def run():
        ws = socket("residents.grams.all", ann)
        assert (await ws.connect())[0]
        snapshot = await ws.receive_json_from(timeout=5)
        assert snapshot["type"] == "snapshot" and snapshot["board"] == "residents.grams.all"
        assert [(r["rank"], r["score"], r["who"]["name"]) for r in snapshot["rows"]] == [
            (1, 300, "Ann")
        ]
        assert snapshot["rows"][0]["who"]["community"] == "Lakeside"
        first_seq = snapshot["seq"]
        me = await ws.receive_json_from(timeout=5)
        assert me == {"type": "me", "board": "residents.grams.all", "me": {"rank": 1, "score": 300}}

        # Bo overtakes Ann: an update with the next number, and Ann hears her rank moved.
        await sync_to_async(award)(bo, 500)
        update, me = None, None
        while update is None or me is None:
            message = await ws.receive_json_from(timeout=5)
            if message["type"] == "update" and len(message["rows"]) == 2:
                update = message
            elif message["type"] == "me":
                me = message
        assert update["seq"] > first_seq
        assert [(r["rank"], r["who"]["name"]) for r in update["rows"]] == [(1, "Bo"), (2, "Ann")]
        assert me["me"] == {"rank": 2, "score": 300}

        # On request (one per push interval), a snapshot with the current number.
        await asyncio.sleep(0.35)
        await ws.send_json_to({"type": "snapshot"})
        again = await receive_type(ws, "snapshot")
        assert again["seq"] >= update["seq"] and again["rows"] == update["rows"]
        await ws.disconnect()

    run_async(run)


def test_updates_are_coalesced_and_numbered_without_gaps(board_backend, people, settings):
    ann, bo = people
    settings.LEADERBOARD_PUSH_INTERVAL = 0.5

    async def run():
        ws = socket("residents.grams.week", ann)
        assert (await ws.connect())[0]
        snapshot = await receive_type(ws, "snapshot")
        began = time.monotonic()
        for i in range(12):
            await sync_to_async(award)(bo if i % 2 else ann, 10)
        changing = time.monotonic() - began
        updates = []
        # Until the last change is pushed (a loaded machine may take its time), then until
        # nothing more comes.
        deadline = time.monotonic() + 30
        while not updates or [r["score"] for r in updates[-1]["rows"]] != [60, 60]:
            message = await ws.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
            if message["type"] == "update":
                updates.append(message)
        while not await ws.receive_nothing(timeout=0.7):
            message = await ws.receive_json_from()
            if message["type"] == "update":
                updates.append(message)
        # Twelve changes, usually in well under a second: a leading and a trailing push, one
        # per push interval in between, maybe one more; never one per change. Numbered one
        # after another from the snapshot's.
        most = max(4, int(changing / settings.LEADERBOARD_PUSH_INTERVAL) + 3)
        assert 1 <= len(updates) <= min(most, 11), (changing, [u["seq"] for u in updates])
        seqs = [u["seq"] for u in updates]
        assert seqs == list(range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(seqs)))
        assert [r["score"] for r in updates[-1]["rows"]] == [60, 60]
        await ws.disconnect()

    run_async(run)


@pytest.mark.redis
def test_pushes_of_a_deployment_on_another_redis_database_never_reach_this_one(settings):
    """Redis pub/sub ignores database numbers: another deployment (or test run) on another
    database of the same server published into this one's groups, and a socket got its
    updates between its own (the coalescing test once saw seqs [1, 7, 2, 8]: two runs'
    numbers interleaved). Each database's layer has its own prefix now. A group of its
    own, so no other process on the server hears this test."""
    ours = settings.CHANNEL_LAYERS["default"]
    assert ours == deployment_layers(settings.REDIS_URL)["default"]
    db = int(parse_url(settings.REDIS_URL).get("db") or 0)
    other_url = urlunsplit(urlsplit(settings.REDIS_URL)._replace(path=f"/{(db + 1) % 16}"))
    group = f"test.{uuid.uuid4().hex}"

    async def run():
        here = RedisPubSubChannelLayer(**ours["CONFIG"])
        there = RedisPubSubChannelLayer(**deployment_layers(other_url)["default"]["CONFIG"])
        # The control: a publisher on the other database with this one's prefix is heard,
        # so the database number alone separates nothing.
        same_prefix = RedisPubSubChannelLayer(hosts=[other_url], prefix=here.prefix)
        try:
            channel = await here.new_channel()
            await here.group_add(group, channel)
            await here.group_send(group, {"type": "t", "n": 0})  # subscribed: heard back
            assert (await asyncio.wait_for(here.receive(channel), 5))["n"] == 0
            await there.group_send(group, {"type": "t", "n": 1})
            await same_prefix.group_send(group, {"type": "t", "n": 2})
            # Published in this order: the other deployment's message would come first.
            assert (await asyncio.wait_for(here.receive(channel), 5))["n"] == 2
        finally:
            for layer in (here, there, same_prefix):
                await layer.flush()

    asyncio.run(run())


def test_close_codes_for_a_bad_token_and_an_unknown_board(board_backend, people):
    ann, _bo = people

    async def run():
        for ws, code in (
            (socket("residents.grams.all", token="not-a-token"), 4401),
            (socket("residents.grams.all"), 4401),
            (socket("no.such.board", ann), 4404),
            (socket("residents.grams.year", ann), 4404),
        ):
            connected, close = await ws.connect()
            assert not connected and close == code

    run_async(run)


def test_snapshot_requests_are_limited_and_bad_messages_answered(board_backend, people):
    ann, _bo = people

    async def run():
        ws = socket("residents.grams.all", ann)
        assert (await ws.connect())[0]
        await receive_type(ws, "snapshot")
        await ws.send_json_to({"type": "snapshot"})
        error = await receive_type(ws, "error")
        assert error["code"] == "throttled"
        await ws.send_to(text_data="{not json")
        assert (await receive_type(ws, "error"))["code"] == "malformed_request"
        await ws.disconnect()

    run_async(run)


@pytest.mark.postgres
def test_writes_from_threads_without_an_event_loop_reach_the_socket(
    board_backend, people, caplog, settings
):
    """A Celery worker's thread has no event loop: it only marks the board, the ASGI side
    pushes. Two awards and a roll-over from a plain thread, no loop errors logged. (On
    PostgreSQL: the suite's in-memory SQLite refuses a second thread's write outright.)
    It used to hang at the close of its event loop: the roll-over marks every board, the
    push loop is mid-round when asyncio.run cancels it, the cancellation was absorbed in the
    round and the loop went on; the push loop now ends on a pending cancellation."""
    ann, bo = people
    caplog.set_level(logging.WARNING)

    def worker():
        award(bo, 70)
        tasks.roll_leaderboards.apply()
        award(bo, 30)
        connections.close_all()

    async def run():
        ws = socket("residents.grams.30d", ann)
        assert (await ws.connect())[0]
        try:
            await receive_type(ws, "snapshot")
            thread = threading.Thread(target=worker)
            thread.start()
            while thread.is_alive():
                await asyncio.sleep(0.05)
            # Generous: a loaded CI machine runs the roll-over of every board in between.
            update = await receive_until(
                ws, "update", lambda u: [r["score"] for r in u["rows"]] == [100], timeout=30
            )
            assert [(r["score"], r["who"]["name"]) for r in update["rows"]] == [(100, "Bo")]
        finally:
            await ws.disconnect()

    run_async(run)
    assert not [r for r in caplog.records if "loop" in r.getMessage().lower()]


def test_a_push_loop_that_absorbed_its_cancellation_still_ends(monkeypatch, settings):
    """The event loop's shutdown cancels each task once and waits for it: a push round that
    swallows the CancelledError (as a library await may) must not keep the loop pushing."""
    settings.LEADERBOARD_POLL_SECONDS = 0.01
    rounds = []

    async def absorbing_round():
        rounds.append(1)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return 0

    monkeypatch.setattr(push, "push_once", absorbing_round)

    async def run():
        push.ensure_push_loop()
        task, stop = push._loops[asyncio.get_running_loop()]
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), 2)  # ended, not pushing on
        finally:
            stop.set()  # fail, never hang, if it did go on
        assert len(rounds) == 1

    asyncio.run(run())
