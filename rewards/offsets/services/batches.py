"""The daily batch of offset requests sent to each programme's bank, as an outbox: the batch
row and its membership are written in one transaction; a worker sends it outside any
transaction (signed, with the batch's request id, the same on every retry, so the bank acts
once); the answer is recorded after, and a batch the bank could not be reached for is
retried with backoff. Offsets the bank never answers are voided after the window."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from carbon.errors import PendingAlreadyResolved
from carbon.models import User
from carbon.services.ledger import ledger_void
from carbon.services.partner_outbound import PartnerNotConfigured, PartnerUnreachable, partner_send
from rewards.offsets.errors import OffsetNotVoidable
from rewards.offsets.models import (
    BankProgramme,
    Offset,
    OffsetBatch,
    OffsetBatchStatus,
    OffsetStatus,
    fen_as_cny,
)

# Where the bank takes our batches, under its endpoint URL.
BATCH_PATH = "offsets/batches"
# A worker that claimed a batch has this long to record the answer before another may retry.
SEND_LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)
OPEN_STATUSES = [OffsetStatus.REQUESTED, OffsetStatus.SENT]


def _row(offset: Offset) -> dict:
    return {
        "offset_id": offset.pk,
        "bank_link_id": offset.link.bank_link_id,
        "grams": offset.grams,
        "cny_per_kg": str(offset.cny_per_kg),
        "value_fen": offset.value_fen,
        "value_cny": fen_as_cny(offset.value_fen),
        "requested_at": offset.requested_at.isoformat(),
    }


def offset_batch_prepare(
    *, programme: BankProgramme, business_date: date | None = None
) -> OffsetBatch | None:
    """Write the day's batch of the programme's requested offsets (one batch a day; the
    day's batch, if written already, is returned as it is). None when nothing waits."""
    business_date = business_date or timezone.localdate()
    with transaction.atomic():
        # The programme's lock, as offset_request takes it: a request is either in this
        # batch or waits for the next one, never half in.
        BankProgramme.objects.select_for_update().get(pk=programme.pk)
        batch = OffsetBatch.objects.filter(programme=programme, business_date=business_date).first()
        if batch is not None:
            return batch
        waiting = list(
            Offset.objects.select_for_update()
            .filter(programme=programme, status=OffsetStatus.REQUESTED, batch__isnull=True)
            .select_related("link")
            .order_by("id")
        )
        if not waiting:
            return None
        request_id = f"offsets-{programme.pk}-{business_date.isoformat()}-{uuid.uuid4().hex[:12]}"
        batch = OffsetBatch.objects.create(
            programme=programme,
            business_date=business_date,
            request_id=request_id,
            payload={
                "request_id": request_id,
                "programme": programme.pk,
                "business_date": business_date.isoformat(),
                "offsets": [_row(o) for o in waiting],
            },
        )
        Offset.objects.filter(pk__in=[o.pk for o in waiting]).update(batch=batch)
    return batch


def offset_batches_prepare(*, business_date: date | None = None) -> int:
    """The day's batch of every programme with requests waiting (the daily job)."""
    made = 0
    programme_ids = (
        Offset.objects.filter(status=OffsetStatus.REQUESTED, batch__isnull=True)
        .values_list("programme_id", flat=True)
        .distinct()
    )
    for programme in BankProgramme.objects.filter(pk__in=list(programme_ids)):
        if offset_batch_prepare(programme=programme, business_date=business_date) is not None:
            made += 1
    return made


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(minutes=2 ** max(0, attempts - 1)), MAX_BACKOFF)


def _void_offset(offset: Offset, *, status: str, reason: str, now: datetime) -> None:
    """Release an open offset's hold and close it. Caller holds the offset's row lock."""
    try:
        ledger_void(pending_id=offset.hold_id, description=f"Offset {offset.pk}: {reason}"[:300])
    except PendingAlreadyResolved:
        pass  # posted: cannot happen for an open offset; voided: the ledger's expiry did it
    offset.status = status
    offset.bank_reason = reason[:300]
    offset.resolved_at = now
    offset.save(update_fields=["status", "bank_reason", "resolved_at"])


def offset_batch_send(*, batch_id: int, now: datetime | None = None) -> str:
    """Send one batch if it is due, and record what came of it: "sent" (the bank took it),
    "rejected" (the bank refused it whole: its offsets are voided, points back), "cancelled"
    (its offsets all closed before it could be sent: not sent), "retry"
    (no answer: tried again later, same request id), or "skipped" (not due, or another
    worker has it)."""
    now = now or timezone.now()
    # Claim it: a short transaction, committed before the network call.
    claimed = OffsetBatch.objects.filter(
        pk=batch_id, status=OffsetBatchStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + SEND_LEASE, attempts=F("attempts") + 1)
    if not claimed:
        return "skipped"
    batch = OffsetBatch.objects.select_related("programme__bank").get(pk=batch_id)
    if not batch.offsets.filter(status=OffsetStatus.REQUESTED).exists():
        # Every offset closed while the bank was unreachable (expired or voided by staff):
        # sending would only ask the bank for what we no longer offer.
        OffsetBatch.objects.filter(pk=batch.pk, status=OffsetBatchStatus.PENDING).update(
            status=OffsetBatchStatus.CANCELLED
        )
        return OffsetBatchStatus.CANCELLED
    try:
        reply = partner_send(
            partner=batch.programme.bank,
            path=BATCH_PATH,
            payload=batch.payload,
            request_id=batch.request_id,
        )
    except (PartnerUnreachable, PartnerNotConfigured) as exc:
        OffsetBatch.objects.filter(pk=batch.pk, status=OffsetBatchStatus.PENDING).update(
            last_error=str(exc)[:2000], next_attempt_at=now + _backoff(batch.attempts)
        )
        return "retry"
    with transaction.atomic():
        batch = OffsetBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.status != OffsetBatchStatus.PENDING:
            return "skipped"  # another worker recorded the answer (a lease that ran out)
        batch.reply_status, batch.reply_body = reply.status, reply.body
        batch.last_error = ""
        if reply.ok:
            batch.status, batch.sent_at = OffsetBatchStatus.SENT, now
            Offset.objects.filter(batch=batch, status=OffsetStatus.REQUESTED).update(
                status=OffsetStatus.SENT, sent_at=now
            )
        else:
            batch.status = OffsetBatchStatus.REJECTED
            for offset in Offset.objects.select_for_update().filter(
                batch=batch, status=OffsetStatus.REQUESTED
            ):
                _void_offset(
                    offset, status=OffsetStatus.FAILED, reason="batch refused by the bank", now=now
                )
        batch.save()
    return batch.status


def offset_batches_send_due(*, now: datetime | None = None) -> int:
    """Send every batch that is due (the frequent job). Returns how many the bank took."""
    now = now or timezone.now()
    due = OffsetBatch.objects.filter(
        status=OffsetBatchStatus.PENDING, next_attempt_at__lte=now
    ).values_list("pk", flat=True)
    return sum(
        1 for pk in list(due) if offset_batch_send(batch_id=pk, now=now) == OffsetBatchStatus.SENT
    )


def offsets_expire(*, now: datetime | None = None) -> int:
    """Void the offsets the bank has not answered within OFFSETS_CONFIRM_DAYS of their
    request (points back); well before the hold's own timeout (offset_hold_timeout)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.OFFSETS_CONFIRM_DAYS)
    count = 0
    for pk in list(
        Offset.objects.filter(status__in=OPEN_STATUSES, requested_at__lte=cutoff).values_list(
            "pk", flat=True
        )
    ):
        with transaction.atomic():
            offset = Offset.objects.select_for_update().get(pk=pk)
            if offset.status not in OPEN_STATUSES:
                continue
            _void_offset(
                offset, status=OffsetStatus.FAILED, reason="not confirmed by the bank", now=now
            )
            count += 1
    return count


def offset_void(*, offset_id: int, reason: str, actor: User | None = None) -> Offset:
    """Staff void an offset the bank has not answered (points back), e.g. when the bank
    says it will never confirm it."""
    with transaction.atomic():
        offset = Offset.objects.select_for_update().get(pk=offset_id)
        if offset.status not in OPEN_STATUSES:
            raise OffsetNotVoidable(details={"status": offset.status})
        _void_offset(
            offset,
            status=OffsetStatus.FAILED,
            reason=f"voided by staff: {reason}",
            now=timezone.now(),
        )
    return offset
