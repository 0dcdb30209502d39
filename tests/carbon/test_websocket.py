"""The balance WebSocket: a snapshot on connect, a push after every change of my ledger.

The consumer reads the database in worker threads, so these tests commit for real
(transactional_db). Each test body is an async function run with asyncio.run; the resident
acts over HTTP from a sync thread, as a request would, and the ledger pushes after commit.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from carbon import consumers
from carbon.services.ledger import ledger_hold
from config.asgi import application
from tests.carbon.api_helpers import PASSWORD, bearer, claim_payload, new_key, obtain_tokens
from tests.carbon.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """The in-memory layer's queues belong to one event loop; each test runs its own loop."""
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


def run_async(main) -> object:
    """asyncio.run, then close the connection the consumer's worker thread opened (with
    CONN_MAX_AGE it would stay open and block dropping the PostgreSQL test database)."""

    async def wrapper():
        try:
            return await main()
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(wrapper())


def socket(token: str | None) -> WebsocketCommunicator:
    path = "/ws/v1/balance" + (f"?token={token}" if token is not None else "")
    return WebsocketCommunicator(application, path, headers=[ORIGIN])


def http_claim(access: str, code: str, quantity) -> dict:
    response = bearer(access).post("/api/v1/claims", claim_payload(code, quantity), format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_balance_on_connect_then_a_push_after_a_credit(metro, ledger_is_consistent):
    # Registered a month ago: 588 g of self declarations fit the budget of an established
    # account (a new one gets less a day).
    user = UserFactory(date_joined=timezone.now() - timedelta(days=30))
    access = obtain_tokens(user.email)["access"]
    http_claim(access, "metro", 10)  # 392 g before connecting

    async def run():
        ws = socket(access)
        connected, _ = await ws.connect()
        assert connected
        first = await ws.receive_json_from(timeout=5)
        assert first == {
            "type": "balance",
            "seq": 1,
            "available_g": 392,
            "pending_g": 0,
            "lifetime_g": 392,
            "expiring_30d_g": 0,
        }

        await sync_to_async(http_claim)(access, "metro", 5)  # +196 g

        pushed = await ws.receive_json_from(timeout=5)
        assert pushed["type"] == "balance"
        assert pushed["seq"] == 2
        assert pushed["available_g"] == 588
        assert pushed["lifetime_g"] == 588
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()

    run_async(run)
    ledger_is_consistent()


def test_a_hold_is_pushed_as_pending(metro, ledger_is_consistent):
    user = UserFactory()
    access = obtain_tokens(user.email)["access"]
    http_claim(access, "metro", 10)

    async def run():
        ws = socket(access)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=5))["seq"] == 1

        await sync_to_async(ledger_hold)(
            user=user, amount_g=92, idempotency_key=new_key(), description="Voucher"
        )

        pushed = await ws.receive_json_from(timeout=5)
        assert (pushed["seq"], pushed["available_g"], pushed["pending_g"]) == (2, 300, 92)
        await ws.disconnect()

    run_async(run)
    ledger_is_consistent()


def test_another_residents_credit_is_not_pushed_to_me(metro):
    me, other = UserFactory(), UserFactory()
    my_access = obtain_tokens(me.email)["access"]
    other_access = obtain_tokens(other.email)["access"]

    async def run():
        ws = socket(my_access)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=5))["available_g"] == 0

        await sync_to_async(http_claim)(other_access, "metro", 10)

        assert await ws.receive_nothing(timeout=0.5)
        await ws.disconnect()

    run_async(run)


def test_a_snapshot_can_be_asked_for():
    user = UserFactory()
    access = obtain_tokens(user.email)["access"]

    async def run():
        ws = socket(access)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=5))["seq"] == 1

        await ws.send_json_to({"type": "snapshot"})

        again = await ws.receive_json_from(timeout=5)
        assert (again["type"], again["seq"], again["available_g"]) == ("balance", 2, 0)
        await ws.send_json_to({"type": "something else"})
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()

    run_async(run)


def test_a_malformed_message_is_answered_and_the_socket_lives_on():
    """Binary frames, text that is not JSON and JSON nested without end get an error message
    in the envelope's code; none crashes the consumer, and a snapshot still works after."""
    user = UserFactory()
    access = obtain_tokens(user.email)["access"]

    async def run():
        ws = socket(access)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=5))["seq"] == 1
        for frame in (
            {"bytes_data": b"\x00\x01"},
            {"text_data": "{not json"},
            {"text_data": "[" * 100_000 + "]" * 100_000},
        ):
            await ws.send_to(**frame)
            answer = await ws.receive_json_from(timeout=5)
            assert (answer["type"], answer["code"]) == ("error", "malformed_request")
        await ws.send_json_to({"type": "snapshot"})
        assert (await ws.receive_json_from(timeout=5))["seq"] == 2
        await ws.disconnect()

    run_async(run)


def _refused(token: str | None) -> tuple[bool, int]:
    async def run():
        ws = socket(token)
        result = await ws.connect()
        await ws.disconnect()
        return result

    return run_async(run)


def test_no_token_is_refused():
    assert _refused(None) == (False, 4401)


def test_a_garbage_token_is_refused():
    assert _refused("not.a.jwt") == (False, 4401)


def test_a_refresh_token_is_refused():
    user = UserFactory()

    assert _refused(obtain_tokens(user.email)["refresh"]) == (False, 4401)


def test_an_erased_residents_token_is_refused():
    user = UserFactory()
    access = obtain_tokens(user.email)["access"]
    assert (
        bearer(access).delete("/api/v1/me", {"password": PASSWORD}, format="json").status_code
        == 204
    )

    assert _refused(access) == (False, 4401)


def test_a_socket_from_a_foreign_origin_is_refused():
    access = obtain_tokens(UserFactory().email)["access"]

    async def run():
        ws = WebsocketCommunicator(
            application,
            f"/ws/v1/balance?token={access}",
            headers=[(b"origin", b"https://evil.example")],
        )
        connected, _ = await ws.connect()
        await ws.disconnect()
        return connected

    assert run_async(run) is False


def test_native_clients_without_origin_connect_but_foreign_origins_are_refused(metro):
    user = UserFactory()
    access = obtain_tokens(user.email)["access"]

    async def run():
        native = WebsocketCommunicator(application, f"/ws/v1/balance?token={access}")
        connected, _ = await native.connect()
        assert connected
        await native.disconnect()
        foreign = WebsocketCommunicator(
            application,
            f"/ws/v1/balance?token={access}",
            headers=[(b"origin", b"https://evil.example")],
        )
        connected, _ = await foreign.connect()
        assert not connected

    run_async(run)


def test_pushes_stop_once_the_token_has_expired(metro, monkeypatch):
    user = UserFactory()
    access = obtain_tokens(user.email)["access"]
    expires_at = AccessToken(access)["exp"]

    def consumer_clock_at(timestamp: float) -> None:
        # The socket outlives its token; rather than wait out the token's lifetime, set the
        # clock the consumer checks the expiry against.
        monkeypatch.setattr(consumers, "time", SimpleNamespace(time=lambda: timestamp))

    async def run():
        ws = socket(access)
        connected, _ = await ws.connect()
        assert connected
        await ws.receive_json_from(timeout=5)
        consumer_clock_at(expires_at - 1)
        await sync_to_async(ledger_award_for)(user)
        assert (await ws.receive_json_from(timeout=5))["available_g"] == 5
        consumer_clock_at(expires_at)
        await sync_to_async(ledger_award_for)(user)
        closed = await ws.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 4401}

    run_async(run)


def ledger_award_for(user):
    from datetime import timedelta

    from django.utils import timezone

    from carbon.services.ledger import ledger_award

    ledger_award(
        user=user,
        amount_g=5,
        category="waste",
        idempotency_key=new_key(),
        description="t",
        expires_at=timezone.now() + timedelta(days=10),
    )
