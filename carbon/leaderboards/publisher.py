"""This process's outbox of leaderboard writes not sent yet: score increments and topic
touches that committed writes announced, sent to the backend by one background thread,
coalesced, so a write path pays an append after commit instead of a round trip.

Used for the Redis backend only (LEADERBOARD_PUBLISH_SECONDS > 0): the thread never
touches the database, so everything it sends was resolved by the writer (members, days,
the windows and topics of each series). The database backend writes inline, in the
writer's own connection.

Guarantees:
- nothing is lost to a write: the thread sends within LEADERBOARD_PUBLISH_SECONDS of the
  first pending write; at LEADERBOARD_PUBLISH_LIMIT pending score changes the writer sends
  them itself (the outbox is bounded); a process sends what is left when it exits (atexit;
  a Celery pool process on worker_process_shutdown); `outbox_flush()` sends now, and the
  engine calls it before any other backend write or read of this process (the process
  reads its own writes, a resident's move follows the awards made in this process), tests
  to be deterministic. Across processes there is no such order: another worker's pending
  increments (at most LEADERBOARD_PUBLISH_SECONDS plus a send old) may land after a move
  or a rebuild made here, on the community the resident left or on top of a rebuilt
  score; a rebuild (`manage.py leaderboards_rebuild`) puts such a board right, as after
  a lost send;
- order: one sender at a time, batches in the order they were taken; increments of one
  member add up, so summing them within a batch keeps every score what it would be;
- a failure never fails a write: a send that fails is logged and dropped, like the inline
  write it replaces (a rebuild puts a board right);
- a forked child starts with an empty outbox (the parent sends its own pending writes).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from celery.signals import worker_process_shutdown
from django.conf import settings

log = logging.getLogger(__name__)


@dataclass
class Outgoing:
    """Writes merged for one send: (series, member, day) -> grams summed; the windows some
    board reads from each series; the topics to mark changed, in first-touch order."""

    scores: dict[tuple[str, str, date], int] = field(default_factory=dict)
    windows: dict[str, frozenset] = field(default_factory=dict)
    topics: dict[str, None] = field(default_factory=dict)

    def add(
        self,
        *,
        rows: Iterable[tuple[str, str, date, int]],
        windows: dict[str, frozenset],
        topics: Iterable[str],
    ) -> None:
        scores = self.scores
        for series, member, day, amount in rows:
            key = (series, member, day)
            scores[key] = scores.get(key, 0) + amount
        self.windows.update(windows)
        self.topics.update(dict.fromkeys(topics))

    def __bool__(self) -> bool:
        return bool(self.scores or self.topics)


class Outbox:
    def __init__(self, send: Callable[[Outgoing], None]) -> None:
        self._send = send
        self._pending = Outgoing()
        self._lock = threading.Lock()  # guards _pending
        self._wake = threading.Condition(self._lock)
        self._sending = threading.Lock()  # one send at a time, in the order taken
        self._thread: threading.Thread | None = None

    def put(
        self,
        *,
        rows: Iterable[tuple[str, str, date, int]],
        windows: dict[str, frozenset],
        topics: Iterable[str],
    ) -> None:
        with self._lock:
            was_empty = not self._pending
            self._pending.add(rows=rows, windows=windows, topics=topics)
            full = len(self._pending.scores) >= settings.LEADERBOARD_PUBLISH_LIMIT
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="leaderboard-outbox", daemon=True
                )
                self._thread.start()
            elif was_empty:
                self._wake.notify()
        if full:
            self.flush()

    def flush(self, *, wait: float = -1) -> bool:
        """Send what is pending now, in this thread. Never raises. `wait`: the most seconds
        to wait for a send under way (the default waits for it); False when it gave up."""
        if not self._sending.acquire(timeout=wait):
            return False
        try:
            with self._lock:
                outgoing, self._pending = self._pending, Outgoing()
                self._wake.notify_all()  # a thread lingering over it has nothing to wait for
            if not outgoing:
                return True
            try:
                self._send(outgoing)
            except Exception:
                log.warning("leaderboard outbox: send failed", exc_info=True)
            return True
        finally:
            self._sending.release()

    def discard(self) -> None:
        """Forget what is pending (tests between two databases), after any send under way."""
        with self._sending, self._lock:
            self._pending = Outgoing()
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._wake.wait()
                # Let the writes of the next few milliseconds join this send (a flush or a
                # discard in the meantime wakes this up early, with nothing left to wait for).
                deadline = time.monotonic() + float(settings.LEADERBOARD_PUBLISH_SECONDS)
                while self._pending and (left := deadline - time.monotonic()) > 0:
                    self._wake.wait(left)
            self.flush()


_outbox: Outbox | None = None
_sender: Callable[[Outgoing], None] | None = None


def outbox_configure(*, send: Callable[[Outgoing], None]) -> None:
    """The engine names the function that sends a merged batch to the backend."""
    global _sender
    _sender = send


def _get() -> Outbox:
    global _outbox
    if _outbox is None:
        if _sender is None:  # pragma: no cover - the engine configures it on import
            raise RuntimeError("leaderboard outbox used before the engine configured it")
        _outbox = Outbox(_sender)
    return _outbox


def outbox_put(
    *,
    rows: Iterable[tuple[str, str, date, int]],
    windows: dict[str, frozenset],
    topics: Iterable[str],
) -> None:
    _get().put(rows=rows, windows=windows, topics=topics)


def outbox_flush() -> None:
    """Send this process's pending writes now, or wait for the send under way to end (cheap
    when there are none): after it, this process's writes are in the backend."""
    if _outbox is not None:
        _outbox.flush()


def outbox_discard() -> None:
    if _outbox is not None:
        _outbox.discard()


def _after_fork_in_child() -> None:
    # The parent's thread does not exist here, its locks may be held: start afresh.
    global _outbox
    _outbox = None


def _flush_at_exit(**_kwargs) -> None:
    """The exit flush waits for a send under way at most EXIT_WAIT_SECONDS: a process never
    hangs on its way out behind a Redis that stopped answering (what stays unsent is what a
    rebuild repairs, as after a hard kill)."""
    outbox = _outbox
    if outbox is not None and not outbox.flush(wait=EXIT_WAIT_SECONDS):
        log.warning("leaderboard outbox: a send still under way at exit; pending writes dropped")


#: Seconds the exit flush waits for a send under way.
EXIT_WAIT_SECONDS = 5

os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_flush_at_exit)
# A Celery pool process ends without the interpreter's exit handlers (billiard's os._exit):
# it sends what is pending on Celery's own shutdown signal instead.
worker_process_shutdown.connect(_flush_at_exit, weak=False)
