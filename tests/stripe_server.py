"""A local Stripe-compatible server over real HTTP, for the payment tests: localstripe (a
stateful fake of Stripe's API: PaymentIntents, charges, refunds, signed webhooks) plus what it
lacks and our code relies on:

- Connect accounts (`/v1/accounts`) and transfers to them (`/v1/transfers`, which emit a
  `transfer.created` event), as resource classes registered beside localstripe's own;
- idempotency keys: a POST with an Idempotency-Key already seen is answered with the first
  answer, without acting again (Stripe's behaviour; localstripe ignores the header);
- fault injection for tests: `slow_next(path_regex)` makes the next matching call succeed at
  the server but answer after the client's timeout;
- webhooks delivered at once (localstripe waits a second) to a capture endpoint of this
  server, so a test replays each signed delivery to our webhook view when and as often as it
  wants (duplicates, out of order).

It runs in a thread of the test process on 127.0.0.1, in memory only (localstripe's pickle
file on disk is not written). Not modelled: balances and payouts of connected accounts,
transfer reversals, application fees, disputes, 3-D Secure beyond localstripe's own.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from localstripe import resources, server, webhooks
from localstripe.errors import UserError
from localstripe.resources import Event, List, StripeObject, store

SECRET_KEY = "sk_test_carbon_local"
WEBHOOK_SECRET = "whsec_carbon_local"


class Account(StripeObject):
    """A Connect account (custom or express): enough to be a transfer's destination."""

    object = "account"
    _id_prefix = "acct_"

    def __init__(self, type=None, country=None, email=None, metadata=None, **kwargs):
        kwargs.pop("capabilities", None)
        kwargs.pop("business_type", None)
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        if type not in ("custom", "express", "standard"):
            raise UserError(400, "Bad request")
        super().__init__()
        self.type = type
        self.country = country or "CN"
        self.email = email
        self.metadata = metadata or {}
        self.charges_enabled = True
        self.payouts_enabled = True


class Transfer(StripeObject):
    """A transfer from the platform's balance to a connected account."""

    object = "transfer"
    _id_prefix = "tr_"

    def __init__(
        self,
        amount=None,
        currency=None,
        destination=None,
        transfer_group=None,
        description=None,
        metadata=None,
        **kwargs,
    ):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        amount = resources.try_convert_to_int(amount)
        if not (isinstance(amount, int) and amount > 0 and isinstance(currency, str)):
            raise UserError(400, "Bad request")
        if not (isinstance(destination, str) and destination.startswith("acct_")):
            raise UserError(400, "Bad request")
        Account._api_retrieve(destination)  # 404 for an unknown account
        super().__init__()
        self.amount = amount
        self.currency = currency
        self.destination = destination
        self.transfer_group = transfer_group
        self.description = description
        self.metadata = metadata or {}
        self.reversed = False
        resources.schedule_webhook(Event("transfer.created", self))


@dataclass
class Delivery:
    body: bytes
    signature: str

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class LocalStripe:
    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    _slow: list[re.Pattern] = field(default_factory=list)
    slow_seconds: float = 2.0
    _answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)

    def slow_next(self, path_regex: str) -> None:
        """The next POST whose path matches acts, then answers only after slow_seconds."""
        self._slow.append(re.compile(path_regex))

    def events(self, type_: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries if type_ is None or d.event["type"] == type_]

    def wait_for(self, type_: str, count: int = 1, timeout: float = 5.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(type_)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no {count} x {type_} webhook within {timeout}s: {self.events()}")

    def reset(self) -> None:
        store.clear()
        self.deliveries.clear()
        self._answers.clear()
        self._slow.clear()
        self.requests.clear()

    def make_middlewares(self):
        @web.middleware
        async def idempotency(request, handler):
            key = request.headers.get("Idempotency-Key")
            self.requests.append((request.method, request.path, key or ""))
            if request.method != "POST" or not key:
                return await handler(request)
            cache_key = f"{request.path}|{key}"
            if cache_key in self._answers:
                status, body = self._answers[cache_key]
                return web.Response(
                    status=status,
                    body=body,
                    content_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
            response = await handler(request)
            if response.status < 500:
                self._answers[cache_key] = (response.status, response.body)
            return response

        @web.middleware
        async def faults(request, handler):
            response = await handler(request)
            for pattern in list(self._slow):
                if request.method == "POST" and pattern.search(request.path):
                    self._slow.remove(pattern)
                    await asyncio.sleep(self.slow_seconds)
                    break
            return response

        return [faults, idempotency]


async def _capture(request: web.Request, stripe_server: LocalStripe) -> web.Response:
    stripe_server.deliveries.append(
        Delivery(body=await request.read(), signature=request.headers.get("Stripe-Signature", ""))
    )
    return web.Response(text="ok")


def _build_app(stripe_server: LocalStripe) -> web.Application:
    app = web.Application(
        middlewares=[
            *stripe_server.make_middlewares(),
            server.error_middleware,
            server.auth_middleware,
        ]
    )
    for cls in (Account, Transfer):
        for method, url, make in (
            ("POST", f"/v1/{cls.object}s", server.api_create),
            ("GET", f"/v1/{cls.object}s/{{id}}", server.api_retrieve),
            ("GET", f"/v1/{cls.object}s", server.api_list_all),
        ):
            app.router.add_route(method, url, make(cls, url))
    for route in server.app.router.routes():
        app.router.add_route(route.method, route.resource.canonical, route.handler)
    app.router.add_post(
        "/_config/test-webhook-capture", lambda request: _capture(request, stripe_server)
    )
    return app


def _quiet_localstripe() -> None:
    # In memory only, and webhooks sent at once (localstripe sleeps a second first).
    resources.Store.dump_to_disk = lambda self: None

    async def no_sleep(_seconds):
        return None

    webhooks.asyncio = types.SimpleNamespace(sleep=no_sleep, ensure_future=asyncio.ensure_future)
    # The Event class lists every object of its kind; ours must be found by id prefix too.
    assert List is not None


@contextmanager
def local_stripe() -> Iterator[LocalStripe]:
    """Start the server on a free port of 127.0.0.1; stop it on exit."""
    _quiet_localstripe()
    stripe_server = LocalStripe()
    store.clear()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner: web.AppRunner | None = None

    async def start() -> None:
        nonlocal runner
        runner = web.AppRunner(_build_app(stripe_server), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        stripe_server.url = f"http://127.0.0.1:{port}"
        webhooks.register_webhook(
            "capture", stripe_server.url + "/_config/test-webhook-capture", WEBHOOK_SECRET, None
        )

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="local-stripe", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the local Stripe server did not start")
    try:
        yield stripe_server
    finally:
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        store.clear()


def signed_delivery(event: dict[str, Any], *, at: int | None = None) -> Delivery:
    """An event signed as localstripe (and Stripe) sign them, for events the local server
    cannot produce in the order a test needs (a stale failure arriving after a success)."""
    import hashlib
    import hmac

    body = json.dumps(event, indent=2, sort_keys=True).encode()
    timestamp = int(time.time()) if at is None else at
    mac = hmac.new(WEBHOOK_SECRET.encode(), b"%d.%s" % (timestamp, body), hashlib.sha256)
    return Delivery(body=body, signature=f"t={timestamp},v1={mac.hexdigest()}")
