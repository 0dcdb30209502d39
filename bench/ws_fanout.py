"""WebSocket fan-out of one board: C clients across W Daphne workers (Redis pub/sub layer,
Redis boards) while score events arrive at R a second; beside it, the bare channel layer
sending the same messages to C channels with no application code.

    CARBON_LOCAL=1 DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon \\
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/ws_fanout.py --clients 1000
    ... bench/ws_fanout.py --quick       # 200 clients, 5 seconds

The database must be migrated (one bench resident is created for the token). Events go
through the engine (board_record) to `residents.grams`, on a member of the bench's own, the
ticker, whose score is a fixed base plus the events so far: the ticker's score in an
update says the newest event it includes, so the delay from that event to each client is
measured. Reports p50/p99 delay, messages delivered per second, and the memory per idle
connection (the workers' RSS before and after the clients connect). Targets (issue 10):
p99 under 200 ms, delivered rate at least half the bare layer's, under 200 KB a connection.
The delay counts from the newest event in a push; an older event in the same push waited up
to the push interval (LEADERBOARD_PUSH_INTERVAL) by design.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("CARBON_LOCAL", "1")

import django  # noqa: E402

django.setup()

from channels.layers import get_channel_layer  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from bench.harness import machine_facts, percentile  # noqa: E402
from carbon.leaderboards import engine  # noqa: E402
from carbon.models import User  # noqa: E402
from tests.serving import WebSocket, daphne, server_env  # noqa: E402

BASE = 10**12
TICKER = "999999999999"
BOARD = "residents.grams.all"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def client(ws: WebSocket, times: dict, delays: list, counts: list, stop: asyncio.Event):
    while not stop.is_set():
        try:
            message = await asyncio.wait_for(ws.receive_json(), 1.0)
        except TimeoutError:
            continue
        if message.get("type") != "update":
            continue
        now = time.monotonic()
        counts[0] += 1
        top = message["rows"][0]["score"] - BASE
        if top in times:
            delays.append((now - times[top]) * 1000)


async def events(rate: float, seconds: float, times: dict) -> int:
    n = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        n += 1
        times[n] = time.monotonic()
        amount = BASE + 1 if n == 1 else 1
        await asyncio.to_thread(
            engine.board_record,
            series="residents.grams",
            entries=[(TICKER, amount, timezone.now())],
        )
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    return n


async def bare_layer(clients: int, messages: int, interval: float, payload: dict) -> tuple:
    """The same messages through the channel layer alone: one group, C channels."""
    layer = get_channel_layer()
    channels = [await layer.new_channel() for _ in range(clients)]
    for name in channels:
        await layer.group_add("bench.bare", name)
    delays, received = [], [0]

    async def receiver(name):
        for _ in range(messages):
            message = await layer.receive(name)
            delays.append((time.monotonic() - message["sent"]) * 1000)
            received[0] += 1

    tasks = [asyncio.create_task(receiver(c)) for c in channels]
    await asyncio.sleep(0.5)
    start = time.monotonic()
    for _ in range(messages):
        await layer.group_send("bench.bare", {**payload, "sent": time.monotonic()})
        await asyncio.sleep(interval)
    await asyncio.wait(tasks, timeout=30)
    took = time.monotonic() - start
    for name in channels:
        await layer.group_discard("bench.bare", name)
    return delays, received[0] / took


async def main_async(args, urls, token, pids):
    path = f"/ws/v1/leaderboards/{BOARD}?token={token}"
    before = sum(rss_kb(p) for p in pids)
    sockets = []
    for i in range(args.clients):
        sockets.append(await WebSocket.connect(urls[i % len(urls)], path))
    await asyncio.sleep(3)  # snapshots sent, connections idle
    for ws in sockets:  # drain the snapshot and "me"
        while True:
            try:
                if (await asyncio.wait_for(ws.receive_json(), 0.05))["type"] == "snapshot":
                    break
            except TimeoutError:
                break
    after = sum(rss_kb(p) for p in pids)
    times, delays, counts, stop = {}, [], [0], asyncio.Event()
    readers = [asyncio.create_task(client(ws, times, delays, counts, stop)) for ws in sockets]
    start = time.monotonic()
    sent = await events(args.rate, args.seconds, times)
    await asyncio.sleep(2)
    took = time.monotonic() - start
    stop.set()
    await asyncio.gather(*readers)
    for ws in sockets:
        await ws.close()
    pushes = counts[0] / max(1, args.clients)
    print(
        f"{args.clients} clients on {len(urls)} workers, {sent} events in {args.seconds:.0f} s ({sent / args.seconds:.0f}/s)"
    )
    print(
        f"app:  delay newest event -> client  p50 {percentile(delays, 50):.1f} ms  p99 {percentile(delays, 99):.1f} ms"
    )
    print(f"app:  delivered {counts[0] / took:.0f} msg/s ({pushes:.1f} pushes per client)")
    print(
        f"app:  memory per idle connection {(after - before) / args.clients:.1f} KB (RSS of the workers)"
    )
    payload = {
        "type": "leaderboard.update",
        "board": BOARD,
        "seq": 1,
        "rows": [
            {
                "rank": i + 1,
                "score": 1000 - i,
                "who": {"name": f"Resident {i}", "community": "C", "district": "D"},
            }
            for i in range(settings.LEADERBOARD_PUSH_ROWS)
        ],
    }
    messages = max(1, int(pushes))
    bare_delays, bare_rate = await bare_layer(
        args.clients, messages, args.seconds / messages, payload
    )
    print(
        f"bare: delay p50 {percentile(bare_delays, 50):.1f} ms  p99 {percentile(bare_delays, 99):.1f} ms, delivered {bare_rate:.0f} msg/s ({messages} messages to {args.clients} channels)"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--quick", action="store_true", help="200 clients for 5 seconds")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds = min(args.clients, 200), min(args.seconds, 5)
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        raise SystemExit("bench/ws_fanout.py needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    user, _ = User.objects.get_or_create(
        email="bench-ws@bench.invalid", defaults={"display_name": "Bench"}
    )
    token = str(AccessToken.for_user(user))
    print(machine_facts())  # here: it reads the database, which the async part may not
    env_url = os.environ["DATABASE_URL"]
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        servers = [
            stack.enter_context(
                daphne(
                    env=server_env(
                        Path(tmp) / f"w{i}",
                        DATABASE_URL=env_url,
                        REDIS_URL=settings.REDIS_URL,
                        SECRET_KEY=settings.SECRET_KEY,
                        DB_POOL_MAX_SIZE="4",
                    ),
                    log=Path(tmp) / f"w{i}.log",
                )
            )
            for i in range(args.workers)
        ]
        try:
            asyncio.run(
                main_async(args, [s.url for s in servers], token, [s.process.pid for s in servers])
            )
        finally:
            from carbon.leaderboards.engine import boards_rebuild

            boards_rebuild(key="residents.grams")  # the ticker is no resident: gone again


if __name__ == "__main__":
    main()
