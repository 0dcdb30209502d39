"""Matching a partner event to a resident: the keyed hash of the partner's own id for them,
and the claim an event becomes once its resident is known."""

from __future__ import annotations

from django.conf import settings

from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus
from carbon.models import Claim, Partner, User
from carbon.services.claims import claim_submit_from_feed
from carbon.services.partners import hmac_hex


def external_ref_hash(*, partner: Partner, external_ref: str) -> str:
    """Keyed hash of a partner's own id for a resident: we never store the raw id."""
    message = f"{partner.pk}:{external_ref.strip()}".encode()
    return hmac_hex(key=settings.PARTNER_REF_HASH_KEY, message=message)


def event_claim(*, event: PartnerEvent, user: User) -> Claim | None:
    claim, _ = claim_submit_from_feed(
        user=user,
        behaviour_code=event.behaviour.code,
        quantity=event.quantity,
        idempotency_key=f"partner-event:{event.pk}",
        occurred_at=event.occurred_at,
        evidence_type="partner",
        evidence={"event": event.pk},
        partner=event.partner,
    )
    event.claim, event.status = claim, PartnerEventStatus.CLAIMED
    event.save(update_fields=["claim", "status"])
    return claim
