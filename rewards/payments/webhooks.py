"""Stripe's webhooks: verified from the raw body (signature and timestamp tolerance), then
applied once: the event id is recorded in the same transaction as the event's effect, so a
redelivery (or two deliveries at once) finds it and does nothing, and an effect that fails
leaves no record, so Stripe's redelivery tries again. Each event type is routed to the slice
that owns its objects (registered from RewardsConfig.ready()); effects do not depend on the
order events arrive in (each handler moves its record forward only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction

from rewards.payments.errors import WebhookSignatureInvalid
from rewards.payments.gateway import stripe_event_verify
from rewards.payments.models import WebhookEvent
from rewards.payments.services import payment_event_apply

#: event type prefix -> function(type, object) -> outcome
_routes: dict[str, Callable[..., str]] = {
    "payment_intent.": lambda type_, obj: payment_event_apply(type_=type_, obj=obj),
}


def webhook_route_register(*, prefix: str, handler: Callable[[str, dict[str, Any]], str]) -> None:
    _routes[prefix] = handler


def stripe_webhook_receive(*, payload: bytes, signature: str) -> WebhookEvent | None:
    """Apply one delivery. Returns the event's record, or None for a duplicate."""
    try:
        event = stripe_event_verify(payload=payload, signature=signature or "")
    except ValueError:
        raise WebhookSignatureInvalid() from None
    type_ = str(event.get("type") or "")
    obj = (event.get("data") or {}).get("object") or {}
    if not isinstance(obj, dict):
        obj = {}
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = WebhookEvent.objects.create(
                    event_id=event["id"][:100],
                    type=type_[:100],
                    object_id=str(obj.get("id", ""))[:100],
                )
        except IntegrityError:
            return None
        handler = next((h for p, h in _routes.items() if type_.startswith(p)), None)
        record.outcome = (handler(type_, obj) if handler else "not handled")[:300]
        record.save(update_fields=["outcome"])
    return record
