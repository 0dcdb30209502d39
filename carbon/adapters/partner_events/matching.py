"""Matching a partner event to a resident: the keyed hash of the partner's own id for them,
and the claim an event becomes once its resident is known (one event at a time, or the
usual events of a batch at once)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.conf import settings

from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus
from carbon.models import Claim, Partner, User
from carbon.services.claims import claim_submit_from_feed
from carbon.services.claims_bulk import FeedClaim, claims_credit_feed_many
from carbon.services.partners import hmac_hex
from carbon.services.rows_bulk import rows_set_by_id


def external_ref_hash(*, partner: Partner, external_ref: str) -> str:
    """Keyed hash of a partner's own id for a resident: we never store the raw id."""
    message = f"{partner.pk}:{external_ref.strip()}".encode()
    return hmac_hex(key=settings.PARTNER_REF_HASH_KEY, message=message)


def _claim_key(event: PartnerEvent) -> str:
    return f"partner-event:{event.pk}"


def event_claim(*, event: PartnerEvent, user: User) -> Claim | None:
    claim, _ = claim_submit_from_feed(
        user=user,
        behaviour_code=event.behaviour.code,
        quantity=event.quantity,
        idempotency_key=_claim_key(event),
        occurred_at=event.occurred_at,
        evidence_type="partner",
        evidence={"event": event.pk},
        partner=event.partner,
    )
    event.claim, event.status = claim, PartnerEventStatus.CLAIMED
    event.save(update_fields=["claim", "status"])
    return claim


def events_claim_many(
    *, pairs: Sequence[tuple[PartnerEvent, User]], now: datetime
) -> list[Claim | None]:
    """event_claim for many stored events at once, in the order given: the usual ones
    credited set-based (claims_bulk) with the claims, receipts and ledger rows event_claim
    writes, and marked claimed in one statement. None for an event left to event_claim
    (anything but a plain credit; then the resident's later events too). Call inside
    transaction.atomic(); IntegrityError (a concurrent run) leaves nothing written."""
    claims = claims_credit_feed_many(
        items=[
            FeedClaim(
                user=user,
                behaviour_code=event.behaviour.code,
                quantity=event.quantity,
                occurred_at=event.occurred_at,
                # What the adapter's `prepare` hands to `verify`: the event itself.
                evidence={"event": event.pk},
                payload=event,
                partner=event.partner,
                idempotency_key=_claim_key(event),
            )
            for event, user in pairs
        ],
        evidence_type="partner",
        now=now,
    )
    credited = {}
    for (event, _user), claim in zip(pairs, claims, strict=True):
        if claim is not None:
            event.claim, event.status = claim, PartnerEventStatus.CLAIMED
            credited[event.pk] = claim.pk
    rows_set_by_id(
        model=PartnerEvent,
        field="claim",
        values=credited,
        fixed={"status": PartnerEventStatus.CLAIMED},
    )
    return claims
