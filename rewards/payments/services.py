"""Card payments and refunds, for the flows that need money (sponsorships, pool sales).

A flow registers a Purpose (what to do when its payment succeeds, fails, or is refunded) and
asks for a payment inside its own transaction: `payment_request` writes the Payment and the
outbox row that creates its PaymentIntent. The PaymentIntent's outcome arrives by webhook
(`payment_event_apply`); a refund is asked for the same way (`payment_refund_request`) and
recorded from Stripe's answer. Every effect happens once: the payment's status is changed
under its row lock, and the purpose's hooks are called only on a change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from carbon.models import Partner, User
from rewards.payments.errors import NotRefundable, PaymentsNotConfigured
from rewards.payments.gateway import payments_configured
from rewards.payments.models import (
    Payment,
    PaymentRefund,
    PaymentStatus,
    RefundStatus,
    StripeRequest,
)
from rewards.payments.outbox import (
    Outcome,
    owner_of,
    stripe_request_enqueue,
    stripe_request_send,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purpose:
    """What a flow does with its payments. Each hook runs inside the transaction that changes
    the payment, with the payment's row locked; a hook that raises undoes the change."""

    name: str
    on_succeeded: Callable[[Payment], None]
    on_failed: Callable[[Payment], None]
    #: May refuse (raise NotRefundable); reserves what the refund will take back.
    on_refund_requested: Callable[[Payment, PaymentRefund], None]
    #: The refund's outcome: succeeded=True takes back for good, False undoes the reservation.
    on_refund_settled: Callable[[Payment, PaymentRefund, bool], None]


_purposes: dict[str, Purpose] = {}


def payment_purpose_register(*, purpose: Purpose) -> None:
    _purposes[purpose.name] = purpose


def _purpose(payment: Payment) -> Purpose:
    return _purposes[payment.purpose]


def payment_request(
    *,
    purpose: str,
    reference: str,
    payer: Partner,
    amount_fen: int,
    requested_by: User | None,
) -> Payment:
    """A payment of `amount_fen` by `payer` for our record `reference` (unique), whose
    PaymentIntent is created by the outbox once the caller's transaction commits."""
    if not payments_configured():
        raise PaymentsNotConfigured()
    if purpose not in _purposes:
        raise ValueError(f"unknown purpose {purpose!r}")
    payment = Payment.objects.create(
        purpose=purpose,
        reference=reference,
        payer=payer,
        requested_by=requested_by,
        amount_fen=amount_fen,
        currency=settings.STRIPE_CURRENCY,
    )
    stripe_request_enqueue(
        operation="payment_intent.create",
        owner=owner_of(kind="payment", pk=payment.pk),
        params={
            "amount": amount_fen,
            "currency": payment.currency,
            "payment_method_types": ["card"],
            "metadata": {"carbon_payment": str(payment.pk), "carbon_reference": reference},
        },
    )
    return payment


def payment_create_now(*, payment_id: int) -> Payment:
    """Create the PaymentIntent now if no worker has (called after the request's transaction
    committed, so that the answer can carry the client secret; no lock is held meanwhile)."""
    request = StripeRequest.objects.filter(owner=owner_of(kind="payment", pk=payment_id)).first()
    if request is not None:
        stripe_request_send(request_id=request.pk)
    return Payment.objects.get(pk=payment_id)


def _payment_created(request: StripeRequest, outcome: Outcome) -> None:
    """The outbox's answer to payment_intent.create."""
    payment = Payment.objects.select_for_update().get(pk=int(request.owner.split(":")[1]))
    if outcome.ok:
        data = outcome.data or {}
        payment.stripe_id = payment.stripe_id or data.get("id")
        payment.client_secret = payment.client_secret or str(data.get("client_secret") or "")
        if payment.status == PaymentStatus.CREATING:
            # A webhook may already have said it succeeded (out of order): that stands.
            payment.status = PaymentStatus.AWAITING
        payment.save()
        return
    if payment.status in (PaymentStatus.CREATING, PaymentStatus.AWAITING):
        payment.status = PaymentStatus.FAILED
        payment.last_error = outcome.error[:500]
        payment.save()
        _purpose(payment).on_failed(payment)


def _payment_for(obj: dict[str, Any]) -> Payment | None:
    """Our payment for a PaymentIntent, by its id or (before we recorded the id: a webhook
    that overtook the worker's answer) by the payment number we put in its metadata."""
    payment = Payment.objects.select_for_update().filter(stripe_id=obj.get("id")).first()
    if payment is None:
        ours = (obj.get("metadata") or {}).get("carbon_payment")
        if ours and str(ours).isdigit():
            payment = Payment.objects.select_for_update().filter(pk=int(ours)).first()
            if payment is not None and payment.stripe_id not in (None, obj.get("id")):
                return None  # it names another PaymentIntent: not ours to apply
    return payment


def payment_event_apply(*, type_: str, obj: dict[str, Any]) -> str:
    """Apply a payment_intent.* event (inside the webhook's transaction). Returns what it did."""
    payment = _payment_for(obj)
    if payment is None:
        return "unknown payment intent"
    if obj.get("amount") != payment.amount_fen or obj.get("currency") != payment.currency:
        log.error(
            "payment %s: Stripe says %s %s", payment.pk, obj.get("amount"), obj.get("currency")
        )
        return "amount or currency differ: ignored"
    if payment.stripe_id is None:
        payment.stripe_id = obj.get("id")
        payment.client_secret = str(obj.get("client_secret") or "")
    if type_ == "payment_intent.succeeded":
        if payment.status == PaymentStatus.SUCCEEDED:
            payment.save()
            return "already succeeded"
        if payment.status == PaymentStatus.FAILED:
            # Money arrived for a payment we gave up on: keep it visible, never lose it.
            log.error("payment %s succeeded at Stripe after it failed here", payment.pk)
        payment.status = PaymentStatus.SUCCEEDED
        payment.succeeded_at = timezone.now()
        payment.last_error = ""
        payment.save()
        _purpose(payment).on_succeeded(payment)
        return "succeeded"
    if type_ == "payment_intent.canceled":
        if payment.status in (PaymentStatus.CREATING, PaymentStatus.AWAITING):
            payment.status = PaymentStatus.FAILED
            payment.last_error = "canceled at Stripe"
            payment.save()
            _purpose(payment).on_failed(payment)
            return "canceled"
        payment.save()
        return f"ignored: already {payment.status}"
    if type_ == "payment_intent.payment_failed":
        # One card attempt failed; the payer may try another card. A late failure event after
        # the success (events arrive in any order) changes nothing.
        if payment.status in (PaymentStatus.CREATING, PaymentStatus.AWAITING):
            error = (obj.get("last_payment_error") or {}).get("message") or "card declined"
            payment.last_error = str(error)[:500]
        payment.save()
        return "attempt failed"
    payment.save()
    return "ignored"


def payment_refund_request(
    *, payment_id: int, amount_fen: int | None, reason: str, actor: User | None
) -> PaymentRefund:
    """Refund (part of) a succeeded payment: the flow reserves what it takes back, and the
    outbox asks Stripe. Needs the `rewards.refund_payment` permission (checked by callers)."""
    reason = (reason or "").strip()
    if not reason:
        raise NotRefundable(details={"reason": "required"})
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        amount = payment.refundable_fen if amount_fen is None else amount_fen
        if not payment.stripe_id or amount <= 0 or amount > payment.refundable_fen:
            raise NotRefundable(
                details={"refundable_fen": payment.refundable_fen, "status": payment.status}
            )
        refund = PaymentRefund.objects.create(
            payment=payment, amount_fen=amount, reason=reason[:300], requested_by=actor
        )
        _purpose(payment).on_refund_requested(payment, refund)
        stripe_request_enqueue(
            operation="refund.create",
            owner=owner_of(kind="refund", pk=refund.pk),
            params={
                "payment_intent": payment.stripe_id,
                "amount": amount,
                "metadata": {
                    "carbon_refund": str(refund.pk),
                    "carbon_reference": payment.reference,
                },
            },
        )
    return refund


def _refund_created(request: StripeRequest, outcome: Outcome) -> None:
    refund = PaymentRefund.objects.select_for_update().get(pk=int(request.owner.split(":")[1]))
    if refund.status != RefundStatus.REQUESTED:
        return
    payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
    data = outcome.data or {}
    succeeded = outcome.ok and data.get("status") in ("succeeded", "pending")
    refund.status = RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED
    refund.stripe_id = data.get("id") or None
    refund.last_error = outcome.error[:500] if not succeeded else ""
    refund.settled_at = timezone.now()
    refund.save()
    if succeeded:
        Payment.objects.filter(pk=payment.pk).update(
            refunded_fen=F("refunded_fen") + refund.amount_fen
        )
        payment.refresh_from_db()
    _purpose(payment).on_refund_settled(payment, refund, succeeded)


def payments_handlers() -> dict[str, Callable[[StripeRequest, Outcome], None]]:
    """The outbox handlers of this slice, registered from RewardsConfig.ready()."""
    return {"payment": _payment_created, "refund": _refund_created}
