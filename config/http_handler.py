"""Django's ASGI handler, with the middleware chain and the view run in one thread hop.

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
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class OneHopASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)
