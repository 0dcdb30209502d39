"""WebSocket: one board, live. `ws/v1/leaderboards/{key}` (also `ws/leaderboards/{key}/`).

Authenticate as the balance socket does (`?token=<access>`, or the admin's session). On
subscribe the client gets a snapshot; then `update` messages, at most about one per
LEADERBOARD_PUSH_INTERVAL per board, each with the board's sequence number (`seq`, the same
on every worker). A client that sees a gap (seq not previous + 1) or reconnects sends
`{"type": "snapshot"}`. A resident also gets `me` (their rank and score on this board,
or null) on subscribe and whenever it changes: at once when they are in the pushed rows,
else within LEADERBOARD_ME_SECONDS (their rank is re-read at most that often, so a
thousand sockets on a board don't each read it at every push).

Close codes: 4401 no or bad token (as the balance socket), 4403 account closed, 4404 no
such board. A client that stops reading is dropped by the server's WebSocket ping timeout
(Daphne's --ping-interval/--ping-timeout), so what is queued for it stays bounded; it never
delays the others (each socket has its own task, pushes go through the channel layer).
"""

from __future__ import annotations

import time

from channels.db import database_sync_to_async
from django.conf import settings

from carbon.consumers import BalanceConsumer
from carbon.errors import ErrorCode
from carbon.leaderboards import engine, registry
from carbon.leaderboards.push import board_group, ensure_push_loop, rows_json


@database_sync_to_async
def _snapshot(board, member: str | None) -> dict:
    seq = engine.board_seq(board=board)
    rows = engine.board_top(board=board, limit=settings.LEADERBOARD_PUSH_ROWS)
    return {"type": "snapshot", "board": board.key, "seq": seq, "rows": rows_json(rows)}


@database_sync_to_async
def _me(board, member: str | None) -> dict | None:
    if member is None:
        return None
    row = engine.board_member_row(board=board, member=member)
    return None if row is None else {"rank": row.rank, "score": row.score}


class LeaderboardConsumer(BalanceConsumer):
    UNKNOWN_BOARD = 4404

    async def connect(self):
        key = self.scope["url_route"]["kwargs"]["key"]
        self.board = registry.board(key)
        user = await self._authenticate()
        if user is None:
            await self.close(code=self.TOKEN_INVALID)
            return
        if self.board is None:
            await self.close(code=self.UNKNOWN_BOARD)
            return
        self.user = user
        self.member = engine.member_for_user(board=self.board, user=user)
        self.last_me = object()
        self.last_me_read = 0.0
        self.last_snapshot = 0.0
        self.group = board_group(self.board.key)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        ensure_push_loop()
        self._start_watch()
        await self._send_snapshot()

    async def receive_json(self, content, **kwargs):
        if await self._ended():
            return
        if isinstance(content, dict) and content.get("type") == "snapshot":
            # One snapshot per push interval at most: a client asking in a loop costs a
            # read each time, not the board's readers.
            if time.monotonic() - self.last_snapshot < float(settings.LEADERBOARD_PUSH_INTERVAL):
                await self.send_json(
                    {
                        "type": "error",
                        "code": ErrorCode.THROTTLED.value,
                        "message": str(ErrorCode.THROTTLED.default_message),
                    }
                )
                return
            await self._send_snapshot()

    async def leaderboard_update(self, event):
        if self.expired():
            await self._ended()
            return
        rows = event["rows"]
        mine = next((r for r in rows if r.get("member") == self.member), None)
        await self.send_json(
            {
                "type": "update",
                "board": event["board"],
                "seq": event["seq"],
                "rows": [{k: v for k, v in r.items() if k != "member"} for r in rows],
            }
        )
        if mine is not None:
            await self._me_is({"rank": mine["rank"], "score": mine["score"]})
        elif time.monotonic() - self.last_me_read >= float(settings.LEADERBOARD_ME_SECONDS):
            await self._send_me()

    async def balance_changed(self, event):  # not subscribed to balances here
        return

    async def _send_snapshot(self):
        self.last_snapshot = time.monotonic()
        await self.send_json(await _snapshot(self.board, self.member))
        await self._send_me(force=True)

    async def _send_me(self, force: bool = False):
        if self.member is None:
            return
        self.last_me_read = time.monotonic()
        await self._me_is(await _me(self.board, self.member), force=force)

    async def _me_is(self, me: dict | None, force: bool = False):
        if force or me != self.last_me:
            self.last_me = me
            await self.send_json({"type": "me", "board": self.board.key, "me": me})
