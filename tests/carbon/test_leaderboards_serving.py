"""Two real ASGI workers (Daphne processes) on Redis (pub/sub channel layer, sorted-set
boards) and PostgreSQL: a client on each receives the same numbered updates, and a client
that never reads is dropped by the ping timeout without delaying the others. And the
production command's uvicorn workers on one port: HTTP and the same numbered pushes."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from rest_framework_simplejwt.tokens import AccessToken

from tests.carbon.factories import CommunityFactory, UserFactory
from tests.carbon.leaderboard_helpers import award
from tests.serving import Call, WebSocket, WebSocketClosed, burst, daphne, server_env, uvicorn

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BOARD = "residents.grams.all"


def _env(tmp_path, name):
    db = connection.settings_dict
    credentials = f"{quote(db['USER'])}:{quote(db['PASSWORD'])}@{db['HOST']}:{db['PORT']}"
    return server_env(
        tmp_path / name,
        DATABASE_URL=f"postgis://{credentials}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        # Tokens signed here must hold there.
        SECRET_KEY=settings.SECRET_KEY,
        LEADERBOARD_PUSH_INTERVAL="0.2",
        LEADERBOARD_POLL_SECONDS="0.05",
        LEADERBOARD_PUSH_ROWS="100",
        DB_POOL_MAX_SIZE="4",
    )


async def _collect(ws: WebSocket, until_score: int, timeout: float = 20) -> list[tuple]:
    """(seq, top score) of every update until the top score reaches `until_score`."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await asyncio.wait_for(ws.receive_json(), deadline - time.monotonic())
        if message["type"] == "update":
            seen.append((message["seq"], message["rows"][0]["score"], len(message["rows"])))
            if message["rows"][0]["score"] >= until_score:
                return seen
    raise AssertionError(f"never saw {until_score}: {seen}")


def test_two_workers_push_the_same_sequence_and_a_slow_client_is_dropped(tmp_path):
    community = CommunityFactory()
    people = [
        UserFactory(display_name=f"Resident {i}", community=community, district=community.district)
        for i in range(60)
    ]
    for i, user in enumerate(people):
        award(user, 10 + i)
    token = str(AccessToken.for_user(people[0]))
    path = f"/ws/v1/leaderboards/{BOARD}?token={token}"
    ping = ["--ping-interval", "1", "--ping-timeout", "2"]

    with (
        daphne(env=_env(tmp_path, "one"), log=tmp_path / "one.log", args=ping) as one,
        daphne(env=_env(tmp_path, "two"), log=tmp_path / "two.log", args=ping) as two,
    ):

        async def run():
            a = await WebSocket.connect(one.url, path)
            b = await WebSocket.connect(two.url, path)
            slow = await WebSocket.connect(one.url, path, rcvbuf=4096)
            for ws in (a, b):
                assert (await ws.receive_json())["type"] == "snapshot"

            async def awards():
                for step in range(1, 16):
                    await asyncio.to_thread(award, people[step % 7], 1000)
                    await asyncio.sleep(0.1)

            writer = asyncio.create_task(awards())
            target = 69 + 1000 * 2  # the leader after its three awards of 1000 (15 / 7)
            started = time.monotonic()
            seen_a, seen_b = await asyncio.gather(_collect(a, target), _collect(b, target))
            await writer
            took = time.monotonic() - started

            # Give the last trailing push time to land on both, then compare.
            async def rest(ws, seen):
                try:
                    while True:
                        message = await asyncio.wait_for(ws.receive_json(), 1.0)
                        if message["type"] == "update":
                            seen.append(
                                (message["seq"], message["rows"][0]["score"], len(message["rows"]))
                            )
                except TimeoutError:
                    return seen

            seen_a, seen_b = await asyncio.gather(rest(a, seen_a), rest(b, seen_b))
            # The slow client: dropped once it misses the ping timeout (1 + 2 s).
            await asyncio.sleep(4)
            closed = None
            try:
                for _ in range(10_000):
                    await asyncio.wait_for(slow.receive_json(), 5)
            except (WebSocketClosed, TimeoutError) as end:
                closed = end
            for ws in (a, b):
                await ws.close()
            return seen_a, seen_b, took, closed

        seen_a, seen_b, took, closed = asyncio.run(run())

    # The awards made before subscribing may reach the first socket alone; from the first
    # number both have seen, the two workers' clients got the same messages.
    common = max(seen_a[0][0], seen_b[0][0])
    seen_a = [u for u in seen_a if u[0] >= common]
    seen_b = [u for u in seen_b if u[0] >= common]
    assert len(seen_a) >= 3 and seen_a == seen_b, (seen_a, seen_b)
    seqs = [s for s, _score, _n in seen_a]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    # 15 changes in ~1.5 s at one push per 0.2 s: coalesced, not one push per change.
    assert len(seqs) < 15
    assert took < 10
    assert isinstance(closed, WebSocketClosed), closed


def test_uvicorn_workers_on_one_port_serve_the_api_and_the_same_numbered_pushes(tmp_path):
    """The production command (scripts/serve.sh): two uvicorn worker processes on one port.
    HTTP answers from it, and sockets opened on it (the kernel spreads them over the
    workers) all get the same numbered updates of a board."""
    community = CommunityFactory()
    people = [
        UserFactory(display_name=f"Resident {i}", community=community, district=community.district)
        for i in range(5)
    ]
    for i, user in enumerate(people):
        award(user, 10 + i)
    token = str(AccessToken.for_user(people[0]))
    path = f"/ws/v1/leaderboards/{BOARD}?token={token}"

    with uvicorn(env=_env(tmp_path, "uv"), log=tmp_path / "uv.log", workers=2) as server:
        me = burst(server.url, [Call("GET", "/api/v1/me", token)] * 20, clients=8)
        assert {a.status for a in me} == {200}

        async def run():
            sockets = [await WebSocket.connect(server.url, path) for _ in range(6)]
            for ws in sockets:
                assert (await ws.receive_json())["type"] == "snapshot"
            for step in range(3):
                await asyncio.to_thread(award, people[step], 1000)
                await asyncio.sleep(0.3)
            target = 1012  # people[2]: 12 + 1000
            seen = await asyncio.gather(*(_collect(ws, target) for ws in sockets))
            for ws in sockets:
                await ws.close()
            return seen

        seen = asyncio.run(run())
    # Every socket ends on the same numbered update, whichever worker it is on.
    assert len({s[-1] for s in seen}) == 1, seen
