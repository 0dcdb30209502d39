"""Partner-event adapter: the strongest evidence, a signed record from the partner itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from carbon.adapters.partner_events.models import PartnerEvent
from carbon.errors import EvidenceNotAccepted
from carbon.verifiers import PreparedEvidence, Verdict


class PartnerEventVerifier:
    tier = "partner"
    accepts_from_resident = False

    def prepare(
        self, *, user: Any, evidence: dict[str, Any], files: Mapping[str, Any]
    ) -> PreparedEvidence:
        event = (
            PartnerEvent.objects.filter(pk=evidence.get("event")).select_related("partner").first()
        )
        if event is None:
            raise EvidenceNotAccepted(_("Partner evidence refers to an event we never received."))
        return PreparedEvidence(evidence={"event": event.pk}, payload=event)

    def verify(self, *, claim, prepared: PreparedEvidence) -> Verdict:
        event = prepared.payload
        if claim.partner_id != event.partner_id:
            return Verdict(
                outcome="rejected",
                code="partner_mismatch",
                reason="The event belongs to another partner.",
            )
        return Verdict(
            outcome="verified",
            code="partner_event",
            reason=f"Reported by {event.partner.name}.",
            facts={"partner": event.partner.name, "event_id": event.event_id, **event.details},
        )
