"""The outbox of Stripe calls. `stripe_request_enqueue` writes the call inside the caller's
transaction (with the record it is for); `stripe_request_send` claims it in a short transaction
(a lease: two workers never send one row at once), calls Stripe through the gateway outside
any transaction (no lock is held across the network), and records the answer in another short
one, where the handler registered for the owner's kind ("payment", "refund", "settlement"...)
applies it to that record. No answer -> retried with backoff and the same idempotency key, so
Stripe acts once; a row a crashed worker left `sending` is taken again after its lease.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from rewards.payments.errors import PaymentsNotConfigured
from rewards.payments.gateway import (
    OPERATIONS,
    StripeRefused,
    StripeUnreachable,
    payments_configured,
    stripe_call,
)
from rewards.payments.models import RequestStatus, StripeRequest

log = logging.getLogger(__name__)

SEND_TASK = "rewards.payments.tasks.send_stripe_request"


@dataclass(frozen=True)
class Outcome:
    """What Stripe answered: the object it created, or why it refused (error)."""

    data: dict[str, Any] | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.data is not None


#: owner kind -> function(request, outcome), run in the transaction that records the answer.
_handlers: dict[str, Callable[[StripeRequest, Outcome], None]] = {}


def stripe_request_handler_register(
    *, kind: str, handler: Callable[[StripeRequest, Outcome], None]
) -> None:
    _handlers[kind] = handler


def owner_of(*, kind: str, pk: int) -> str:
    return f"{kind}:{pk}"


def stripe_request_enqueue(
    *, operation: str, owner: str, params: dict[str, Any], now: datetime | None = None
) -> StripeRequest:
    """Owe Stripe one call for `owner` (one call per owner: asking again returns the first).
    Call it inside the transaction that writes the owner; it is sent once that commits."""
    if operation not in OPERATIONS:
        raise ValueError(operation)
    existing = StripeRequest.objects.filter(owner=owner).first()
    if existing is not None:
        return existing
    request = StripeRequest.objects.create(
        operation=operation,
        owner=owner,
        # Derived from our own record: a retry by any worker, at any time, carries it.
        idempotency_key=f"carbon-{owner.replace(':', '-')}-{operation}",
        # Every object we create names the row it came from (payments_reconcile matches them).
        params={**params, "metadata": {**params.get("metadata", {}), "carbon_owner": owner}},
        next_attempt_at=now or timezone.now(),
    )
    transaction.on_commit(partial(_enqueue, request.pk), robust=True)
    return request


def _enqueue(request_id: int) -> None:
    # If the broker is down the row stays due: the sweep sends it.
    current_app.tasks[SEND_TASK].delay(request_id=request_id)


def _lease() -> timedelta:
    return timedelta(
        seconds=max(settings.STRIPE_LEASE_SECONDS, 2 * settings.STRIPE_TIMEOUT_SECONDS + 5)
    )


def _backoff(attempts: int) -> timedelta:
    base = settings.STRIPE_RETRY_BASE_SECONDS
    delay = min(settings.STRIPE_RETRY_MAX_SECONDS, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))


def _claim(*, request_id: int, now: datetime) -> tuple[StripeRequest, uuid.UUID] | None:
    token = uuid.uuid4()
    with transaction.atomic():
        row = (
            StripeRequest.objects.select_for_update(skip_locked=True)
            .due(now=now)
            .filter(pk=request_id)
            .first()
        )
        if row is None:
            return None
        # Conditional as well as locked: SQLite ignores row locks.
        claimed = (
            StripeRequest.objects.due(now=now)
            .filter(pk=request_id)
            .update(
                status=RequestStatus.SENDING,
                lease_token=token,
                lease_until=now + _lease(),
                attempts=F("attempts") + 1,
                updated_at=now,
            )
        )
        if claimed != 1:
            return None
        row.refresh_from_db()
    return row, token


def stripe_request_send(*, request_id: int, now: datetime | None = None) -> StripeRequest | None:
    """Send one due call and record the answer. Safe to call any number of times, from any
    number of workers."""
    if not payments_configured():
        return StripeRequest.objects.filter(pk=request_id).first()
    claim = _claim(request_id=request_id, now=now or timezone.now())
    if claim is None:
        return StripeRequest.objects.filter(pk=request_id).first()
    row, token = claim
    try:
        obj = stripe_call(
            operation=row.operation, params=row.params, idempotency_key=row.idempotency_key
        )
    except (StripeUnreachable, PaymentsNotConfigured) as exc:
        return _record_no_answer(row.pk, token, str(exc) or "payments not configured")
    except StripeRefused as exc:
        return _record(row.pk, token, Outcome(data=None, error=str(exc)))
    return _record(row.pk, token, Outcome(data=obj.data))


def _record_no_answer(request_id: int, token: uuid.UUID, error: str) -> StripeRequest:
    now = timezone.now()
    with transaction.atomic():
        row = StripeRequest.objects.select_for_update().get(pk=request_id)
        if row.status != RequestStatus.SENDING or row.lease_token != token:
            return row
        if row.attempts >= settings.STRIPE_MAX_ATTEMPTS:
            # Still unknown whether Stripe acted: the owner fails, and payments_reconcile
            # reports any object Stripe did create for it.
            return _finish(row, Outcome(data=None, error=f"no answer after retries: {error}"))
        row.status = RequestStatus.QUEUED
        row.next_attempt_at = now + _backoff(row.attempts)
        row.last_error = error[:500]
        row.lease_token = row.lease_until = None
        row.save()
    log.warning("Stripe request %s: no answer (attempt %d): %s", row.pk, row.attempts, error)
    return row


def _record(request_id: int, token: uuid.UUID, outcome: Outcome) -> StripeRequest:
    with transaction.atomic():
        row = StripeRequest.objects.select_for_update().get(pk=request_id)
        if row.status == RequestStatus.DONE:
            return row  # recorded by another worker (the same answer: same idempotency key)
        if row.status != RequestStatus.SENDING or row.lease_token != token:
            if row.status == RequestStatus.FAILED:
                return row
        return _finish(row, outcome)


def _finish(row: StripeRequest, outcome: Outcome) -> StripeRequest:
    row.status = RequestStatus.DONE if outcome.ok else RequestStatus.FAILED
    row.stripe_id = str((outcome.data or {}).get("id") or "")[:100]
    row.last_error = outcome.error[:500]
    row.lease_token = row.lease_until = None
    row.done_at = timezone.now()
    row.save()
    handler = _handlers.get(row.owner.split(":", 1)[0])
    if handler is None:
        raise LookupError(f"no handler registered for {row.owner}")
    handler(row, outcome)
    return row


def stripe_requests_sweep(*, now: datetime | None = None, limit: int = 50) -> int:
    """Send every due call (queued ones whose retry time came, and ones left `sending` past
    their lease). Returns how many it took."""
    now = now or timezone.now()
    ids = list(
        StripeRequest.objects.due(now=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    for request_id in ids:
        stripe_request_send(request_id=request_id, now=now)
    return len(ids)
