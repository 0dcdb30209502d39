"""WebSocket: a resident's balance, sent on connect and again after every ledger change.

Authenticate with the access token as `?token=<access>` (browsers can't set headers on a
WebSocket) or with the session of the Django admin.

A socket lives no longer than what opened it. Close codes:

- 4401: no token, an invalid one, or one that expired. At connect, or while open: the socket
  closes when the token's `exp` passes, whether or not anything is pushed. Reconnect with a
  fresh access token (refresh first).
- 4403: not a resident's account (merchant staff, institution members and administrators
  hold no points), at connect; or the account was erased, deactivated or stopped being a
  resident's while the socket was open: noticed on the next message from either side, and
  at the latest BALANCE_SOCKET_RECHECK_SECONDS after. Don't reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.security.websocket import OriginValidator
from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication

from carbon.api.parsing import json_loads_bounded
from carbon.api.serializers import BalanceSerializer
from carbon.errors import ErrorCode
from carbon.leaderboards.push import balance_group, ensure_push_loop
from carbon.models import User
from carbon.services.ledger import balance_for_user


class BrowserOriginValidator(OriginValidator):
    """Browsers send Origin, and it must be one of ours (the admin's session cookie would
    otherwise ride along cross-site). Native apps send none and authenticate by token."""

    def __init__(self, application):
        super().__init__(application, allowed_origins=[])

    async def __call__(self, scope, receive, send):
        self.allowed_origins = settings.ALLOWED_HOSTS
        return await super().__call__(scope, receive, send)

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


@database_sync_to_async
def _user_from_token(raw: str):
    """(user, expiry timestamp) for a valid access token, else (None, None)."""
    auth = JWTAuthentication()
    try:
        token = auth.get_validated_token(raw.encode())
        return auth.get_user(token), token.get("exp")
    except AuthenticationFailed:
        # All simplejwt lets out: InvalidToken (garbage, forged, expired or a refresh token;
        # it catches its own TokenError) is an AuthenticationFailed, and so is an unknown or
        # inactive user.
        return None, None


@database_sync_to_async
def _still_a_resident(user_id: int) -> bool:
    return User.objects.residents().filter(pk=user_id).exists()


@database_sync_to_async
def _balance(user) -> dict:
    # The fields of GET /me's balance, minus the expiry list.
    data = BalanceSerializer(balance_for_user(user=user)).data
    return {k: data[k] for k in ("available_g", "pending_g", "lifetime_g", "expiring_30d_g")}


class BalanceConsumer(AsyncJsonWebsocketConsumer):
    TOKEN_INVALID = 4401
    ACCOUNT_CLOSED = 4403
    NOT_A_RESIDENT = 4403  # the same close: nothing to watch here, don't reconnect

    async def connect(self):
        user = await self._authenticate()
        if user is None:
            await self.close(code=self.TOKEN_INVALID)
            return
        if not user.is_resident:
            # As the API's IsResident refuses them (residents_only): no balance to watch.
            await self.close(code=self.NOT_A_RESIDENT)
            return
        self.user = user
        self.group = balance_group(user.pk)
        self.seq = 0
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # Pushes come from this process's push loop (coalesced, see carbon.leaderboards.push).
        ensure_push_loop()
        self._start_watch()
        await self._send_balance()

    async def _authenticate(self):
        """The user of `?token=` or of the admin session; None when neither holds."""
        query = parse_qs(self.scope.get("query_string", b"").decode())
        user, self.expires_at = None, None
        if "token" in query:
            user, self.expires_at = await _user_from_token(query["token"][0])
        elif getattr(self.scope.get("user"), "is_authenticated", False):
            user = self.scope["user"]
        if user is None or not user.is_active:
            return None
        return user

    def _start_watch(self):
        # Without this, a quiet socket would outlive its token and its account.
        self.watch = asyncio.create_task(self._watch())

    def expired(self) -> bool:
        return self.expires_at is not None and time.time() >= self.expires_at

    async def disconnect(self, code):
        if watch := getattr(self, "watch", None):
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Messages are small JSON objects, parsed with the API's bounded parser; anything
        else (binary, malformed, nested without end) is answered with an error message and
        the socket stays open: a client's bad message never crashes the consumer."""
        try:
            if not text_data:
                raise ValueError("send text frames holding a JSON object")
            content = json_loads_bounded(text_data)
        except (ValueError, RecursionError):
            await self.send_json(
                {
                    "type": "error",
                    "code": ErrorCode.MALFORMED_REQUEST.value,
                    "message": str(ErrorCode.MALFORMED_REQUEST.default_message),
                }
            )
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        if await self._ended():
            return
        if isinstance(content, dict) and content.get("type") == "snapshot":
            await self._send_balance()

    async def balance_changed(self, event):
        if await self._ended():
            return
        await self._send_balance()

    async def _watch(self):
        """Wake when the token expires, and every recheck period for the account."""
        recheck = float(settings.BALANCE_SOCKET_RECHECK_SECONDS)
        while True:
            delay = recheck
            if self.expires_at is not None:
                delay = min(delay, max(0.0, self.expires_at - time.time()))
            await asyncio.sleep(delay)
            if await self._ended():
                return

    async def _ended(self) -> bool:
        """Close with the documented code if the token expired or the account closed."""
        if self.expires_at is not None and time.time() >= self.expires_at:
            await self.close(code=self.TOKEN_INVALID)
            return True
        if not await _still_a_resident(self.user.pk):
            await self.close(code=self.ACCOUNT_CLOSED)
            return True
        return False

    async def _send_balance(self):
        self.seq += 1
        await self.send_json({"type": "balance", "seq": self.seq, **(await _balance(self.user))})
