"""Transit-card adapter: trips from the operator's signed tap feed.

The evidence is {"trip": <id>}: a trip paired from the card's taps and priced along the
network by this slice (pairing, trips). A trip with an anomaly (impossible speed, overlapping
trips, exit without entry, ...) goes to the review queue with the anomaly on the receipt.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from carbon.adapters.transit.models import TransitCard, Trip
from carbon.adapters.transit.trips import trip_facts
from carbon.errors import EvidenceNotAccepted
from carbon.verifiers import PreparedEvidence, Verdict


class TransitVerifier:
    tier = "transit"
    accepts_from_resident = False

    def prepare(
        self, *, user: Any, evidence: dict[str, Any], files: Mapping[str, Any]
    ) -> PreparedEvidence:
        if files:
            raise EvidenceNotAccepted(
                _("Transit evidence takes no files."), details={"files": sorted(files)}
            )
        trip_id = evidence.get("trip")
        if isinstance(trip_id, bool) or not isinstance(trip_id, int):
            raise EvidenceNotAccepted(
                _('Transit evidence is {"trip": <trip id>}.'), details={"field": "evidence.trip"}
            )
        # One query: the trip, and only if its card is linked to this resident now.
        cards = TransitCard.objects.linked().filter(user=user).values("card_hash")
        trip = Trip.objects.filter(pk=trip_id, card_hash__in=cards).first()
        if trip is None:
            raise EvidenceNotAccepted(
                _("No such trip on a card linked to this resident."), details={"trip": trip_id}
            )
        if trip.claim_id is not None:
            raise EvidenceNotAccepted(_("This trip is already claimed."), details={"trip": trip_id})
        return PreparedEvidence(evidence={"trip": trip.pk}, payload=trip)

    def verify(self, *, claim, prepared: PreparedEvidence) -> Verdict:
        trip = prepared.payload
        facts = trip_facts(trip=trip)
        if trip.anomaly:
            return Verdict(
                outcome="needs_review",
                code=trip.anomaly,
                reason=trip.anomaly_detail
                or "The trip looks impossible; a reviewer will look at it.",
                facts=facts,
            )
        if trip.distance_m is not None and claim.behaviour.unit == "km":
            expected = (Decimal(trip.distance_m) / 1000).quantize(Decimal("0.001"))
            if claim.quantity > expected:
                return Verdict(
                    outcome="rejected",
                    code="quantity_exceeds_trip",
                    reason=f"The trip was {expected} km; {claim.quantity} km were claimed.",
                    facts=facts,
                )
        where = " to ".join(c for c in (facts["entry_station"], facts["exit_station"]) if c)
        if trip.distance_m is not None and trip.distance_m > 0:
            basis = (
                "along the network"
                if facts.get("distance_basis") == "network"
                else "along the line"
            )
            reason = f"Card trip {where}: {trip.distance_m / 1000:.3f} km {basis}."
        else:
            reason = f"Card trip boarding at {where}."
        return Verdict(outcome="verified", code="card_trip", reason=reason, facts=facts)
