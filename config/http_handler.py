"""Django's ASGI handler, with the middleware chain and the view run in one thread hop, on
a thread kept from an earlier request.

Every HTTP view of ours is synchronous, and so is most middleware (Django's own run their
hooks through `sync_to_async` when the chain is async; WhiteNoise's cannot run async at
all). Loaded async, as `get_asgi_application()` does, a request therefore went from the
event loop to a worker thread and back about twenty times: once per middleware hook, once
more for CSRF's view hook and once for the view, each hop a thread hand-off and an event-loop
wake-up (about 1 ms of CPU per request on the serving bench's machine, more than the bare
view itself). Here the chain is loaded synchronously, as under WSGI, and entered once
through `sync_to_async`: the same middleware in the same order, the same thread for the
whole request (thread-sensitive, per request, as before), one hop. An async view would
still run (Django calls it through `async_to_sync`).

Django's handler gives each request a thread-sensitive context of its own, whose executor
starts a new thread and, when the request ends, a second thread that joins the first: two
thread starts per request, about 0.2 ms of CPU, a fifth of what a bare view costs in all.
Here the request's context runs on a one-thread executor kept from an earlier request
(asgiref's `ThreadSensitiveContext(executor=...)`): still one thread per request in flight,
everything of one request on that one thread, as before, and a thread goes back to the idle
list only after everything its request queued on it has run (a request whose client went
away finishes its view first). Thread-local state carried to the next request is what a
WSGI server's reused threads carry: Django closes the request's database connection (back
to the pool) and resets its URL configuration and language at the end of each request.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

#: Idle request threads kept per process for the next requests; a burst past this many
#: requests in flight starts threads that end with their request.
MAX_IDLE_THREADS = 64


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # as Django's handler
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            executor = self._idle.pop()
        except IndexError:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            # Queued behind whatever the request left on the thread.
            executor.submit(self._put_back, executor)

    def _put_back(self, executor: ThreadPoolExecutor) -> None:
        """On the executor's own thread, once its request's work is done."""
        if len(self._idle) < MAX_IDLE_THREADS:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)
