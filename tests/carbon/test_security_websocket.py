"""The balance WebSocket lives no longer than its token and its account: it closes with 4401
when the token expires and 4403 when the account is erased, even if nothing is pushed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework_simplejwt.tokens import AccessToken

from config.asgi import application
from tests.carbon.api_helpers import PASSWORD, bearer, obtain_tokens
from tests.carbon.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """The in-memory layer's queues belong to one event loop; each test runs its own loop."""
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


def run_async(main):
    async def wrapper():
        try:
            return await main()
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(wrapper())


async def open_socket(access: str) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(
        application, f"/ws/v1/balance?token={access}", headers=[(b"origin", b"http://testserver")]
    )
    connected, _ = await ws.connect()
    assert connected
    assert (await ws.receive_json_from(timeout=5))["type"] == "balance"
    return ws


def erase(access: str) -> None:
    response = bearer(access).delete("/api/v1/me", {"password": PASSWORD}, format="json")
    assert response.status_code == 204, response.content


def test_a_quiet_socket_closes_with_4401_when_its_token_expires(monkeypatch):
    # simplejwt reads the lifetime into the class at import: a one-second token here. The
    # socket must close at `exp` on its own: nothing is pushed and the client says nothing.
    monkeypatch.setattr(AccessToken, "lifetime", timedelta(seconds=1))
    access = obtain_tokens(UserFactory().email)["access"]

    async def run():
        ws = await open_socket(access)
        closed = await ws.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4401}

    run_async(run)


def test_after_erasure_the_next_message_is_answered_by_a_4403_close():
    access = obtain_tokens(UserFactory().email)["access"]

    async def run():
        ws = await open_socket(access)
        await sync_to_async(erase)(access)

        await ws.send_json_to({"type": "snapshot"})

        assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}

    run_async(run)


def test_after_erasure_a_quiet_socket_closes_within_the_recheck_period(settings):
    settings.BALANCE_SOCKET_RECHECK_SECONDS = 0.2
    access = obtain_tokens(UserFactory().email)["access"]

    async def run():
        ws = await open_socket(access)
        assert await ws.receive_nothing(timeout=0.5)  # rechecks find the account alive
        await sync_to_async(erase)(access)

        assert await ws.receive_output(timeout=3) == {"type": "websocket.close", "code": 4403}

    run_async(run)
