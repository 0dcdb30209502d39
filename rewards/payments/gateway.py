"""The one gateway to Stripe: every call goes through `stripe_call`, which wraps stripe-python's
StripeClient with the configured key and API base (a local Stripe-compatible server in tests
and demos, Stripe in production), always with the caller's idempotency key (derived from our
own record: never the library's random one), and no retries of its own (the outbox retries,
with the same key). It never touches the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings

from rewards.payments.errors import PaymentsNotConfigured

#: What we may ask of Stripe, by operation name (kept in the outbox rows).
OPERATIONS = {
    "payment_intent.create": ("payment_intents", "create"),
    "refund.create": ("refunds", "create"),
    "account.create": ("accounts", "create"),
    "transfer.create": ("transfers", "create"),
}


class StripeUnreachable(Exception):
    """No answer (a timeout, a refused connection, a 5xx, a rate limit): the outcome is
    unknown, so the call is made again later with the same idempotency key."""


class StripeRefused(Exception):
    """Stripe answered and refused (a 4xx other than a rate limit): asking again with the
    same key would be refused again."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StripeObject:
    id: str
    data: dict[str, Any]


def payments_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def stripe_client() -> stripe.StripeClient:
    if not payments_configured():
        raise PaymentsNotConfigured()
    base = settings.STRIPE_API_BASE.rstrip("/")
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base, "connect": base, "files": base} if base else None,
        max_network_retries=0,
        http_client=stripe.HTTPXClient(
            timeout=settings.STRIPE_TIMEOUT_SECONDS, allow_sync_methods=True
        ),
    )


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def stripe_call(*, operation: str, params: dict[str, Any], idempotency_key: str) -> StripeObject:
    """Make one create call. Raises StripeUnreachable (try again, same key) or StripeRefused."""
    if not idempotency_key:
        raise ValueError("every Stripe call carries an idempotency key derived from our record")
    service_name, method = OPERATIONS[operation]
    service = getattr(stripe_client().v1, service_name)
    try:
        obj = getattr(service, method)(params=params, options={"idempotency_key": idempotency_key})
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise StripeUnreachable(str(exc)[:300]) from exc
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        if status >= 500 or status == 0:
            raise StripeUnreachable(f"HTTP {status}: {exc.user_message or exc}"[:300]) from exc
        raise StripeRefused(
            f"HTTP {status}: {exc.user_message or exc}"[:300], code=str(exc.code or "")
        ) from exc
    data = _plain(obj)
    return StripeObject(id=str(data.get("id") or ""), data=data)


def stripe_list(*, kind: str) -> list[dict[str, Any]]:
    """Every object of a kind ("payment_intents", "refunds", "transfers", "accounts") at
    Stripe, for reconciliation. Raises StripeUnreachable when Stripe does not answer."""
    service = getattr(stripe_client().v1, kind)
    try:
        return [_plain(o) for o in service.list(params={"limit": 100}).auto_paging_iter()]
    except stripe.StripeError as exc:
        raise StripeUnreachable(str(exc)[:300]) from exc


def stripe_event_verify(*, payload: bytes, signature: str) -> dict[str, Any]:
    """The event in a webhook body, once its signature (over the raw body, with our secret)
    and its timestamp (within the tolerance) are checked. Raises ValueError otherwise."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        # Without our secret no signature can be checked, so none is valid.
        raise ValueError("no webhook secret configured")
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"),
            signature,
            secret,
            tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from exc
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise ValueError("not an event")
    return event
