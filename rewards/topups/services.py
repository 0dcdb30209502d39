"""Transit top-ups through the transit operator, as an outbox.

`topup_request` writes the row inside the caller's transaction (the redemption that placed
the hold) and asks a worker to send it once that commits. `topup_send` claims the row in a
short transaction (a lease: two workers never send one row at once), sends the signed request
outside any transaction (no lock is held across the network), and records the answer in
another short one: confirmed -> the hold is posted; refused -> voided, the points come back;
no answer -> retried later with backoff and the same request id (the operator acts once per
request id), until the deadline, when it fails and the hold is voided. `topups_sweep` (the
periodic job) sends what is due, including rows a crashed worker left `sending`.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from celery import current_app
from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from carbon.errors import HoldExpired, PendingAlreadyResolved
from carbon.models import Partner, PartnerCredential, Transfer, TransferCode, TransferFlag, User
from carbon.services.ledger import ledger_post, ledger_void
from carbon.services.partner_outbound import (
    PartnerNotConfigured,
    PartnerReply,
    PartnerUnreachable,
    partner_send,
)
from carbon.services.partners import partner_signing_secret
from rewards.topups.cards import card_number_open, card_number_seal, linked_card_of
from rewards.topups.errors import (
    HoldUnusable,
    InvalidTopUpAmount,
    NotRefundable,
    OperatorUnavailable,
)
from rewards.topups.models import TopUp, TopUpStatus
from rewards.topups.signals import topup_settled

log = logging.getLogger(__name__)

#: The Celery task that sends one top-up (rewards/topups/tasks.py), looked up by name so that
#: the services do not import the tasks that call them.
SEND_TASK = "rewards.topups.tasks.send_topup"
CENT = Decimal("0.01")


# --- timing ---------------------------------------------------------------------------------


def _lease() -> timedelta:
    # A claim must outlast the slowest send, or a second worker would send beside the first:
    # httpx's timeout applies to each of connect, write and read.
    seconds = max(settings.TOPUP_LEASE_SECONDS, 4 * settings.PARTNER_OUTBOUND_TIMEOUT_SECONDS + 5)
    return timedelta(seconds=seconds)


def topup_min_hold_timeout() -> timedelta:
    """The shortest ledger timeout a top-up's hold may be placed with.

    The last send may start just before the deadline and hold its lease to the end, and the
    sweep that records the outcome runs every TOPUP_SWEEP_SECONDS: until then the hold must
    still be pending, or a confirmation could no longer be posted (the ledger would have
    released the points while the operator topped up the card)."""
    return (
        timedelta(minutes=settings.TOPUP_DEADLINE_MINUTES)
        + _lease()
        + timedelta(seconds=settings.TOPUP_SWEEP_SECONDS)
    )


def _backoff(attempts: int) -> timedelta:
    """Exponential, capped, with jitter (half fixed, half random) so that rows that failed
    together do not all come back together."""
    base = settings.TOPUP_RETRY_BASE_SECONDS
    delay = min(settings.TOPUP_RETRY_MAX_SECONDS, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))


# --- the request (inside the caller's transaction) ------------------------------------------


def _amount(value: Any) -> Decimal:
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
            raise InvalidTopUpAmount()
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidTopUpAmount() from None
    if amount > Decimal(settings.TOPUP_MAX_AMOUNT_CNY):
        raise InvalidTopUpAmount(details={"max_cny": str(settings.TOPUP_MAX_AMOUNT_CNY)})
    return amount.quantize(CENT)


def _check_operator(operator: Partner) -> None:
    if (
        operator.kind != Partner.Kind.TRANSIT_OPERATOR
        or not operator.is_active
        or not operator.endpoint_url
    ):
        raise OperatorUnavailable()
    try:
        partner_signing_secret(partner=operator)
    except PartnerCredential.DoesNotExist:
        raise OperatorUnavailable() from None


def _check_hold(*, hold: Transfer, user: User, now: datetime) -> None:
    hold = Transfer.objects.select_related("debit_account").get(pk=hold.pk)
    usable = (
        hold.flag == TransferFlag.PENDING
        and hold.code == TransferCode.HOLD
        and hold.debit_account.user_id == user.pk
        and not Transfer.objects.filter(pending_id=hold.pk).exists()
    )
    if not usable:
        raise HoldUnusable(details={"hold": hold.pk})
    if hold.timeout_at < now + topup_min_hold_timeout():
        raise HoldUnusable(
            details={
                "hold": hold.pk,
                "min_timeout_s": int(topup_min_hold_timeout().total_seconds()),
            }
        )


def _same_request(topup: TopUp, **fields: Any) -> bool:
    return all(getattr(topup, name) == value for name, value in fields.items())


def topup_request(
    *,
    user: User,
    hold: Transfer,
    operator: Partner,
    amount_cny: Decimal,
    card_number: str,
    reference: str,
    now: datetime | None = None,
) -> TopUp:
    """Owe `user` a top-up of `amount_cny` on their linked card `card_number`, paid for by
    `hold` (a pending transfer the caller placed on the user's points, in this transaction,
    with a timeout of at least topup_min_hold_timeout()). Call it inside the caller's
    transaction: the send starts once that commits, and nothing is sent if it rolls back.

    Asking again for the same hold with the same details returns the same top-up.
    """
    now = now or timezone.now()
    reference = str(reference or "").strip()
    if not reference or len(reference) > TopUp._meta.get_field("reference").max_length:
        raise ValueError("a top-up needs the caller's reference (at most 200 characters)")
    amount = _amount(amount_cny)
    _check_operator(operator)
    card, digits = linked_card_of(user=user, card_number=card_number)
    same = {
        "user_id": user.pk,
        "operator_id": operator.pk,
        "card_id": card.pk,
        "amount_cny": amount,
        "reference": reference,
    }
    if (existing := TopUp.objects.filter(hold_id=hold.pk).first()) is not None:
        if _same_request(existing, **same):
            return existing
        raise HoldUnusable(details={"hold": hold.pk})
    _check_hold(hold=hold, user=user, now=now)
    try:
        with transaction.atomic():
            topup = TopUp.objects.create(
                user=user,
                hold=hold,
                operator=operator,
                card=card,
                card_last_digits=digits[-4:],
                card_number_encrypted=card_number_seal(digits),
                amount_cny=amount,
                reference=reference,
                next_attempt_at=now,
                deadline_at=now + timedelta(minutes=settings.TOPUP_DEADLINE_MINUTES),
            )
    except IntegrityError:
        # The same hold, by a concurrent call: the same top-up if it asked the same.
        existing = TopUp.objects.filter(hold_id=hold.pk).first()
        if existing is not None and _same_request(existing, **same):
            return existing
        raise HoldUnusable(details={"hold": hold.pk}) from None
    transaction.on_commit(partial(_enqueue_send, topup.pk), robust=True)
    return topup


def _enqueue_send(topup_id: int) -> None:
    # If the broker is down the row stays due: the sweep sends it.
    current_app.tasks[SEND_TASK].delay(topup_id=topup_id)


# --- the worker -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    topup: TopUp
    token: uuid.UUID
    digits: str


def _payload(topup: TopUp, digits: str) -> dict[str, Any]:
    # The same body on every attempt: the operator may compare a retry with the original.
    return {
        "request_id": str(topup.request_id),
        "card_number": digits,
        "amount_fen": int(topup.amount_cny * 100),
        "currency": "CNY",
        "reference": topup.reference,
        # The operator must not act on it after this: by then we have given the points back.
        "expires_at": topup.deadline_at.isoformat(),
    }


def _claim(*, topup_id: int, now: datetime) -> _Claim | None:
    """Take the row for one send, if it is due and no other worker has it; settle it as
    failed instead when it may no longer be sent."""
    with transaction.atomic():
        topup = (
            TopUp.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("operator")
            .due(now=now)
            .filter(pk=topup_id)
            .first()
        )
        if topup is None:
            return None  # settled, not due, or another worker is on it
        why_not = None
        if now >= topup.deadline_at or topup.attempts >= settings.TOPUP_MAX_ATTEMPTS:
            why_not = "no answer from the operator in time"
            if topup.last_error:
                why_not = f"{why_not} (last: {topup.last_error})"
        elif Transfer.objects.filter(pending_id=topup.hold_id).exists():
            why_not = "the points hold was released before the top-up could be sent"
        elif topup.card_number_encrypted is None:
            why_not = "the card number was erased before the top-up could be sent"
        digits = ""
        if why_not is None:
            try:
                digits = card_number_open(topup.card_number_encrypted)
            except InvalidToken:
                why_not = "the card number cannot be decrypted (PARTNER_SECRETS_KEY changed)"
        if why_not is not None:
            _settle_locked(topup, outcome=TopUpStatus.FAILED, error=why_not, now=now)
            return None
        token = uuid.uuid4()
        # Conditional as well as locked: on SQLite, which ignores row locks, the update is
        # what keeps a second worker out.
        claimed = (
            TopUp.objects.due(now=now)
            .filter(pk=topup.pk)
            .update(
                status=TopUpStatus.SENDING,
                lease_token=token,
                lease_until=now + _lease(),
                attempts=F("attempts") + 1,
                updated_at=now,
            )
        )
        if claimed != 1:
            return None
        topup.refresh_from_db()
    return _Claim(topup=topup, token=token, digits=digits)


def topup_send(*, topup_id: int, now: datetime | None = None) -> TopUp | None:
    """Send one top-up to the operator if it is due, and record the answer. Safe to call any
    number of times, from any number of workers."""
    claim = _claim(topup_id=topup_id, now=now or timezone.now())
    if claim is None:
        return TopUp.objects.filter(pk=topup_id).first()
    topup = claim.topup
    try:
        reply = partner_send(
            partner=topup.operator,
            path=settings.TOPUP_OPERATOR_PATH,
            payload=_payload(topup, claim.digits),
            request_id=str(topup.request_id),
        )
    except PartnerNotConfigured as exc:
        # Retried like silence: the operator's configuration may be fixed before the deadline.
        return _record_no_answer(claim, f"operator not configured: {exc}")
    except PartnerUnreachable as exc:
        return _record_no_answer(claim, str(exc))
    return _record_reply(claim, reply)


def _record_reply(claim: _Claim, reply: PartnerReply) -> TopUp:
    body = reply.body
    if reply.ok and body.get("status") == "confirmed":
        return _settle(
            claim.topup.pk,
            outcome=TopUpStatus.CONFIRMED,
            error="",
            operator_ref=str(body.get("operator_ref") or "")[:100],
        )
    code = body.get("code")
    if not reply.ok and isinstance(code, str) and code.strip():
        message = str(body.get("message") or "")
        return _settle(
            claim.topup.pk,
            outcome=TopUpStatus.REFUSED,
            error=f"refused by the operator: {code.strip()}: {message}".rstrip(": "),
        )
    # A 2xx that confirms nothing (still processing) or a 4xx without the operator's reason
    # (our signature, a wrong path): not a decision about this top-up. Ask again later.
    return _record_no_answer(claim, f"HTTP {reply.status} without a decision: {body}"[:500])


def _record_no_answer(claim: _Claim, error: str) -> TopUp:
    now = timezone.now()
    with transaction.atomic():
        topup = TopUp.objects.select_for_update().get(pk=claim.topup.pk)
        if topup.status != TopUpStatus.SENDING or topup.lease_token != claim.token:
            return topup  # settled meanwhile, or our lease ran out and another worker has it
        topup.status = TopUpStatus.QUEUED
        if topup.attempts >= settings.TOPUP_MAX_ATTEMPTS:
            topup.next_attempt_at = now  # the next sweep fails it and gives the points back
        else:
            topup.next_attempt_at = min(now + _backoff(topup.attempts), topup.deadline_at)
        topup.last_error = error[:500]
        topup.lease_token = topup.lease_until = None
        topup.save()
    log.warning("top-up %s: no answer (attempt %d): %s", topup.pk, topup.attempts, error)
    return topup


def _settle(topup_id: int, *, outcome: str, error: str, operator_ref: str = "") -> TopUp:
    with transaction.atomic():
        topup = TopUp.objects.select_for_update().get(pk=topup_id)
        if topup.settled:
            # A late answer to a row settled meanwhile (a refund by staff, a second worker):
            # the operator answers one request id the same way, so only a contradiction is news.
            if outcome != topup.status:
                log.error(
                    "top-up %s: the operator answered %s after it was settled as %s",
                    topup.pk,
                    outcome,
                    topup.status,
                )
                topup.last_error = f"operator answered {outcome} after settlement: {error}"[:500]
                topup.save(update_fields=["last_error", "updated_at"])
            return topup
        _settle_locked(topup, outcome=outcome, error=error, operator_ref=operator_ref)
    return topup


def _settle_locked(
    topup: TopUp, *, outcome: str, error: str, now: datetime | None = None, operator_ref: str = ""
) -> None:
    """Resolve the hold as the outcome says and close the row. The caller holds its lock."""
    description = f"Transit top-up {topup.reference}"[:300]
    if outcome == TopUpStatus.CONFIRMED:
        try:
            ledger_post(pending_id=topup.hold_id, description=description)
            topup.points_taken = True
        except (HoldExpired, PendingAlreadyResolved):
            # The ledger released the hold first (its timeout was shorter than the caller
            # was told to give). Never post after a void: the card was topped up, the points
            # were not taken; staff see it here and in the log.
            topup.points_taken = False
            error = "the operator confirmed after the points hold had been released"
            log.error("top-up %s: %s (hold %s)", topup.pk, error, topup.hold_id)
    else:
        try:
            ledger_void(pending_id=topup.hold_id, description=f"{description}: not fulfilled")
            topup.points_taken = False
        except PendingAlreadyResolved:
            topup.points_taken = True  # posted by someone else: nothing to give back here
            log.error("top-up %s: %s, but its hold was already posted", topup.pk, outcome)
    topup.status = outcome
    # A confirmation clears the last retry's error; a failure keeps it if it has no better.
    kept = "" if outcome == TopUpStatus.CONFIRMED else topup.last_error
    topup.last_error = (error or kept)[:500]
    topup.operator_ref = operator_ref or topup.operator_ref
    topup.card_number_encrypted = None
    topup.lease_token = topup.lease_until = None
    topup.settled_at = now or timezone.now()
    topup.save()
    transaction.on_commit(partial(_announce, topup.pk, outcome), robust=True)


def _announce(topup_id: int, outcome: str) -> None:
    topup = TopUp.objects.get(pk=topup_id)
    topup_settled.send(sender=TopUp, topup=topup, outcome=outcome)


def topups_sweep(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Send every due top-up (queued ones whose retry time came, and ones a worker left
    `sending` past its lease), and fail those past their deadline. Returns how many it took.
    Runs beside other sweeps and workers: each row is claimed before it is sent."""
    now = now or timezone.now()
    limit = limit or settings.TOPUP_SWEEP_BATCH
    ids = list(
        TopUp.objects.due(now=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    for topup_id in ids:
        topup_send(topup_id=topup_id, now=now)
    return len(ids)


# --- staff decisions ------------------------------------------------------------------------


def topup_refund(*, topup_id: int, actor: User, reason: str, now: datetime | None = None) -> TopUp:
    """Staff give the points back for a top-up the operator has not answered (they checked
    with the operator that it never acted). Refused while a send is in flight or once settled.
    """
    now = now or timezone.now()
    with transaction.atomic():
        topup = TopUp.objects.select_for_update().get(pk=topup_id)
        in_flight = topup.status == TopUpStatus.SENDING and topup.lease_until > now
        if topup.settled or in_flight:
            raise NotRefundable(details={"status": topup.status})
        error = f"refunded by staff #{actor.pk}: {reason.strip()}"
        _settle_locked(topup, outcome=TopUpStatus.FAILED, error=error, now=now)
    return topup
