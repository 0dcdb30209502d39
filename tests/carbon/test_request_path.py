"""What a read request costs on its way through the stack (issue 13), pinned so it cannot
creep back: the thread hops of the ASGI handler, the cache's connections, and the SQL
statements of each read endpoint (GET /me, /ledger, /claims, /behaviours) with a real bearer
token, as bench/reads.py and bench/http_serving.py send them.

Statement counts are exact: a change that adds one fails here; one that removes some
updates the constant in the same commit (say why there).
"""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from asgiref.sync import SyncToAsync
from django.core.cache import caches

from config.asgi import application


def _asgi_get(path: str) -> tuple[int, bytes]:
    async def run():
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"accept-language", b"en")],
            "client": ("127.0.0.1", 5555),
            "server": ("testserver", 80),
        }
        answered = asyncio.Event()
        messages, requested = [], []

        async def receive():
            if not requested:
                requested.append(True)
                return {"type": "http.request", "body": b"", "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            messages.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()

        await application(scope, receive, send)
        return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])

    return asyncio.run(run())


def test_an_http_request_enters_the_middleware_and_view_thread_once(monkeypatch):
    """Django's handler loaded async ran each middleware hook in a thread of its own turn:
    about twenty hand-offs between the event loop and a thread per request (config/
    http_handler.py). Now: the request_started signal, the whole chain with the view, the
    log line of an error answer, and closing the response."""
    crossings = []
    original = SyncToAsync.__call__

    def counted(self, *args, **kwargs):
        crossings.append(getattr(self.func, "__qualname__", repr(self.func)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)

    status, body = _asgi_get("/api/v1/me")  # no token: DRF's 401, through every middleware

    assert status == 401
    assert b'"not_authenticated"' in body
    assert len(crossings) == 4, crossings


@pytest.mark.redis
def test_every_cache_object_of_the_process_shares_one_redis_pool():
    """Django keeps a cache object per request context under ASGI; each used to open its
    own pool, so each request connected to Redis anew (config/redis_pool.py)."""

    def pool_of_a_fresh_context():
        cache = caches["default"]
        return cache._cache.get_client(write=True).connection_pool, cache

    first, first_cache = contextvars.Context().run(pool_of_a_fresh_context)
    second, second_cache = contextvars.Context().run(pool_of_a_fresh_context)

    assert first_cache is not second_cache  # two contexts, two cache objects, as per request
    assert first is second
