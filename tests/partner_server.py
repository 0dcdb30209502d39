"""A small partner server over real HTTP, for the code that sends requests to partners (the
transit operator's top-up endpoint, the bank's offset batches).

It checks our signature the way a partner would (HMAC-SHA256 over "{timestamp}.{body}" with
the shared secret, timestamp within the window), answers a repeated X-Request-Id with its
first answer (as a partner idempotent by our request id does), records every request, and
lets a test script the answers: a reply per request, a delay (our timeout), a dropped
connection, a 5xx. Runs in a thread of the test process on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    #: A retry of an earlier request id: answered from memory, not acted on again.
    repeat: bool = False

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def request_id(self) -> str:
        return self.headers.get("x-request-id", "")


# What a handler returns: (HTTP status, JSON body), or one of the faults below.
Reply = tuple[int, Any]
DROP = "drop"  # close the connection without an answer


@dataclass
class PartnerServer:
    secret: str
    tolerance: int = 300
    received: list[Received] = field(default_factory=list)
    #: Called with each first-time request; returns a Reply, or DROP.
    handler: Callable[[Received], Reply | str] = lambda request: (200, {"status": "ok"})
    #: Seconds to wait before answering (longer than the client's timeout: a timeout).
    delay: float = 0.0
    url: str = ""
    _answers: dict[str, Reply] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acted_on(self) -> list[Received]:
        """Requests the partner acted on: one per request id, whatever the retries."""
        return [r for r in self.received if r.signature_ok and not r.repeat]

    def _verify(self, headers: dict[str, str], body: bytes) -> bool:
        timestamp = headers.get("x-timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.tolerance:
            return False
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, headers.get("x-signature", ""))

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply | str:
        request = Received(path, headers, body, self._verify(headers, body))
        with self._lock:
            self.received.append(request)
            if not request.signature_ok:
                return 401, {"error": "bad signature"}
            if request.request_id in self._answers:
                request.repeat = True
                return self._answers[request.request_id]
        if self.delay:
            time.sleep(self.delay)
        reply = self.handler(request)
        if reply != DROP and isinstance(reply, tuple) and reply[0] < 500:
            with self._lock:
                self._answers[request.request_id] = reply
        return reply


@contextmanager
def partner_server(secret: str, **options) -> Iterator[PartnerServer]:
    server_state = PartnerServer(secret=secret, **options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = server_state._answer(self.path, headers, body)
            if reply == DROP:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            status, payload = reply
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): the partner still acted

        def log_message(self, *args):  # quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
