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
import json

import pytest
from asgiref.sync import SyncToAsync
from django.core.cache import caches
from rest_framework.utils.encoders import JSONEncoder

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


@pytest.fixture
def request_threads():
    """(signal, thread id) of each request_started / request_finished during the test."""
    import threading

    from django.core.signals import request_finished, request_started

    seen: list[tuple[str, int]] = []

    def started(**kwargs):
        seen.append(("started", threading.get_ident()))

    def finished(**kwargs):
        seen.append(("finished", threading.get_ident()))

    request_started.connect(started, weak=False, dispatch_uid="test-request-threads-started")
    request_finished.connect(finished, weak=False, dispatch_uid="test-request-threads-finished")
    yield seen
    request_started.disconnect(dispatch_uid="test-request-threads-started")
    request_finished.disconnect(dispatch_uid="test-request-threads-finished")


def test_one_request_runs_on_one_thread_and_the_next_reuses_it(request_threads, monkeypatch):
    """Django's handler started a thread per request and another to join it; the handler
    keeps the request's thread for the next one (config/http_handler.py). Everything of
    one request still runs on one thread, the event loop's own being never that one."""
    import threading
    import time

    from config import asgi

    handler = asgi.django_asgi_app
    monkeypatch.setattr(handler, "_idle", [])

    assert _asgi_get("/api/v1/me")[0] == 401
    # The thread goes back once the request's last work on it has run.
    deadline = time.monotonic() + 10
    while not handler._idle and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _asgi_get("/api/v1/me")[0] == 401

    threads = {ident for _, ident in request_threads}
    assert [name for name, _ in request_threads] == ["started", "finished"] * 2
    assert len(threads) == 1, request_threads
    assert threading.get_ident() not in threads


def _gets_inside_django_at_once(count: int) -> list[int]:
    """`count` GET /api/v1/me sent at once, each held in its request_started until all of
    them are there (a barrier): they finish only if each has a thread of its own. The
    statuses."""
    import threading

    from django.core.signals import request_started

    barrier = threading.Barrier(count, timeout=10)

    def meet(**kwargs):
        barrier.wait()

    request_started.connect(meet, weak=False, dispatch_uid="test-requests-meet")
    try:

        async def all_at_once():
            return await asyncio.gather(
                *(asyncio.to_thread(_asgi_get, "/api/v1/me") for _ in range(count))
            )

        answers = asyncio.run(all_at_once())
    finally:
        request_started.disconnect(dispatch_uid="test-requests-meet")
    return [status for status, _ in answers]


def test_requests_in_flight_together_run_on_threads_of_their_own(request_threads):
    """Two requests that must both be inside Django at once only finish if each has a
    thread: one shared thread would leave the second queued behind the first and break
    the barrier."""
    assert _gets_inside_django_at_once(2) == [401, 401]
    started = [ident for name, ident in request_threads if name == "started"]
    assert len(set(started)) == 2


def test_idle_request_threads_beyond_the_cap_end(request_threads, monkeypatch):
    """A burst leaves at most MAX_IDLE_THREADS threads waiting; the others end."""
    import threading
    import time

    from config import asgi, http_handler

    handler = asgi.django_asgi_app
    monkeypatch.setattr(handler, "_idle", [])
    monkeypatch.setattr(http_handler, "MAX_IDLE_THREADS", 1)

    assert _gets_inside_django_at_once(3) == [401] * 3

    threads = {ident for name, ident in request_threads if name == "started"}
    assert len(threads) == 3
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        len(handler._idle) != 1 or sum(t.ident in threads for t in threading.enumerate()) != 1
    ):
        time.sleep(0.02)
    assert len(handler._idle) == 1
    # The two threads not kept have ended; the kept one is alive, waiting for work.
    assert sum(t.ident in threads for t in threading.enumerate()) == 1


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


@pytest.mark.redis
def test_a_cache_object_reuses_its_redis_client_across_calls():
    """Django's Redis client built a `redis.Redis` for every cache call, copying redis-py's
    response-callback table each time (0.1 ms of CPU, three times per claim)."""
    cache = caches["default"]
    reader = cache._cache.get_client()
    cache.set("request-path-probe", 1)
    assert cache.get("request-path-probe") == 1
    assert cache._cache.get_client() is reader
    assert cache._cache.get_client(write=True) is reader  # one server: reads and writes share

    # Django makes a cache object per request context (and thread): they share it too.
    other = contextvars.Context().run(lambda: caches["default"])
    assert other is not cache
    assert other._cache.get_client() is reader


# --- statements per read request, with a real bearer token -----------------------------------
#
# GET /me for a resident of a community: the user with their community, district and ledger
# account (one statement, carbon.api.authentication; was four), then balance_for_user's one
# read of the open lots by expiry day, those past expiry not yet swept in a group of their
# own. Before: 6.
ME_STATEMENTS = 2
# GET /ledger: the user with their ledger account (was two statements), then the page from
# each side of the ledger (carbon.api.pagination.LedgerNewestFirst).
LEDGER_STATEMENTS = 3
# GET /claims: the user, then the page with each claim's behaviour code and factor version
# joined (only the rendered columns).
CLAIMS_STATEMENTS = 2
# GET /behaviours: the user (a bearer token is checked on any endpoint); the catalogue and
# its rendering come from the process's snapshot (one cache read to check its version).
BEHAVIOURS_STATEMENTS = 1


@pytest.fixture
def reader(resident, metro):
    """A resident of a community with credited claims and a hold (both ledger sides), and a
    client that sends their bearer token, as a phone does."""
    from rest_framework_simplejwt.tokens import AccessToken

    from carbon.services.ledger import ledger_hold
    from tests.carbon.api_helpers import bearer, claim_payload, client_for, new_key
    from tests.carbon.factories import CommunityFactory

    community = CommunityFactory(code="wuchang-3")
    resident.community, resident.district = community, community.district
    resident.save()
    poster = client_for(resident)
    for quantity in (1, 2, 3):
        posted = poster.post(
            "/api/v1/claims",
            claim_payload("metro", quantity, evidence={"type": "self"}),
            format="json",
        )
        assert posted.status_code == 201, posted.content
    ledger_hold(user=resident, amount_g=5, idempotency_key=new_key(), description="Voucher hold")
    client = bearer(str(AccessToken.for_user(resident)))
    for path in ("/api/v1/me", "/api/v1/ledger", "/api/v1/claims", "/api/v1/behaviours"):
        assert client.get(path).status_code == 200  # warm: the catalogue snapshot
    return client


def _counted(client, path: str):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, response.content
    listing = "\n".join(f"{i + 1:3}. {q['sql'][:160]}" for i, q in enumerate(ctx))
    return response.json(), len(ctx), listing


@pytest.mark.django_db
def test_me_reads_the_user_with_their_community_and_district_in_one_statement(reader, resident):
    body, statements, listing = _counted(reader, "/api/v1/me")

    assert (body["community"], body["district"]) == ("wuchang-3", resident.district.code)
    assert body["email"] == resident.email
    assert body["lifetime_g"] > 0
    assert statements == ME_STATEMENTS, listing


@pytest.mark.django_db
def test_the_ledger_page_sends_a_fixed_number_of_statements(reader):
    body, statements, listing = _counted(reader, "/api/v1/ledger")

    assert len(body["results"]) == 4  # three awards, one hold
    assert statements == LEDGER_STATEMENTS, listing


@pytest.mark.django_db
def test_the_claims_page_reads_only_what_it_renders_and_renders_it_all(reader, resident):
    from carbon.api.serializers import ClaimSerializer
    from carbon.models import Claim

    body, statements, listing = _counted(reader, "/api/v1/claims")

    assert statements == CLAIMS_STATEMENTS, listing
    # The same body as the serializer gives a claim read whole.
    whole = Claim.objects.owned_by(resident).order_by("-submitted_at", "-id")
    expected = json.loads(json.dumps(ClaimSerializer(whole, many=True).data, cls=JSONEncoder))
    assert body["results"] == expected


@pytest.mark.django_db
def test_the_behaviours_listing_sends_only_the_users_statement(reader):
    body, statements, listing = _counted(reader, "/api/v1/behaviours")

    assert [b["code"] for b in body] == ["metro"]
    assert statements == BEHAVIOURS_STATEMENTS, listing


def test_a_model_serializer_builds_its_fields_once_and_gives_each_instance_its_own(
    reader, resident
):
    """carbon.api.serializers.ModelSerializer keeps the fields DRF derives from the model
    (built per instance by DRF); each instance must still get fields of its own (they are
    bound to it), and render exactly what DRF's own ModelSerializer renders."""
    from rest_framework import serializers

    from carbon.api.serializers import ClaimSerializer
    from carbon.models import Claim

    class DrfClaimSerializer(serializers.ModelSerializer):  # the same class, on DRF's base
        behaviour = serializers.SlugRelatedField(slug_field="code", read_only=True)
        factor_version = serializers.IntegerField(
            source="factor.version", default=None, read_only=True
        )

        class Meta:
            model = Claim
            fields = ClaimSerializer.Meta.fields

    claim = Claim.objects.select_related("behaviour", "factor").filter(user=resident).first()
    first, second = ClaimSerializer(claim), ClaimSerializer(claim)

    assert first.data == DrfClaimSerializer(claim).data
    assert second.data == first.data
    assert first.fields["status"] is not second.fields["status"]
    assert first.fields["status"].parent is first and second.fields["status"].parent is second
