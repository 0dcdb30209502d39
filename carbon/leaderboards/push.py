"""The push loop: one asyncio task per ASGI worker process, started by the first socket.

Writers anywhere (requests, Celery workers, commands) only mark topics dirty in the
backend; they never talk to the channel layer, so no process but an ASGI worker ever needs
an event loop for pushing. Every LEADERBOARD_POLL_SECONDS each worker's loop claims the
dirty topics whose last push is at least LEADERBOARD_PUSH_INTERVAL old. A claim is atomic
across workers (a Lua script on Redis, row locks in the database), so exactly one worker
pushes each topic each time, with the next sequence number of that board, over the
channel layer's group: every worker's clients get the same message with the same number.
A topic changed again within the interval stays dirty and goes out on the trailing edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import weakref

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from carbon.leaderboards import engine, registry

log = logging.getLogger(__name__)

_loops: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def board_group(key: str) -> str:
    return f"leaderboard.{key}"


def balance_group(user_id: int) -> str:
    return f"balance.{user_id}"


def rows_json(rows, *, members: bool = False) -> list[dict]:
    """Rows as clients get them; `members` keeps the member keys (between the push loop and
    the sockets only, so a socket finds its resident's row without a read)."""
    return [
        {
            **({"member": r.member} if members else {}),
            "rank": r.rank,
            "score": r.score,
            "who": {"name": r.who.name, "community": r.who.community, "district": r.who.district},
        }
        for r in rows
    ]


@database_sync_to_async
def _claim() -> list[tuple[str, int]]:
    from carbon.leaderboards.backends import get_backend

    engine.outbox_flush()  # this process's own pending touches are claimable too
    return get_backend().topics_claim(interval_ms=engine.push_interval_ms())


@database_sync_to_async
def _update(key: str) -> list[dict] | None:
    board = registry.board(key)
    if board is None:
        return None
    rows = engine.board_top(board=board, limit=settings.LEADERBOARD_PUSH_ROWS)
    return rows_json(rows, members=True)


async def push_once() -> int:
    """Claim and push what is due; the number of messages sent."""
    layer = get_channel_layer()
    sent = 0
    for topic, seq in await _claim():
        kind, _sep, name = topic.partition(":")
        if kind == "balance":
            await layer.group_send(balance_group(int(name)), {"type": "balance.changed"})
        elif kind == "board":
            rows = await _update(name)
            if rows is None:
                continue
            await layer.group_send(
                board_group(name),
                {"type": "leaderboard.update", "board": name, "seq": seq, "rows": rows},
            )
        sent += 1
    return sent


async def _run(stop: asyncio.Event) -> None:
    poll = float(settings.LEADERBOARD_POLL_SECONDS)
    me = asyncio.current_task()
    # A cancellation can be absorbed inside a round (a library await that catches it and
    # returns or raises something else): then `while True` went on pushing, and the event
    # loop's shutdown, which cancels each task once and waits for it, waited forever (the
    # hang of the thread-fed socket test at loop close). So the loop also ends on a pending
    # cancellation, and on a cooperative stop between rounds.
    while not stop.is_set() and not me.cancelling():
        try:
            await push_once()
        except asyncio.CancelledError:
            raise
        except Exception:  # the next round tries again; a board is never stuck dirty
            log.warning("leaderboard push round failed", exc_info=True)
        if me.cancelling():
            break
        try:
            await asyncio.wait_for(stop.wait(), poll)
        except TimeoutError:
            pass


def ensure_push_loop() -> None:
    """Start this process's push loop on the running event loop, once. In a fresh context:
    the loop outlives the socket that starts it, so it must not inherit that socket's
    context (asgiref's thread-sensitive executor choice lives in context variables)."""
    loop = asyncio.get_running_loop()
    found = _loops.get(loop)
    if found is None or found[0].done():
        stop = asyncio.Event()
        task = contextvars.Context().run(loop.create_task, _run(stop), name="leaderboard-push")
        _loops[loop] = (task, stop)


async def push_loop_stop() -> None:
    """Stop this event loop's push loop between rounds and wait for it (a test, or a
    server's shutdown, before its loop closes: no round is cut in the middle of a send)."""
    found = _loops.pop(asyncio.get_running_loop(), None)
    if found is None:
        return
    task, stop = found
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), 10)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
