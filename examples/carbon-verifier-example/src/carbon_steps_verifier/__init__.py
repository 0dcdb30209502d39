"""A verification adapter shipped as its own package: step counts from a phone pedometer.

It checks that the claimed walking distance matches the step count (a stride between
0.4 and 1.0 m) and refuses readings no human walks in a day. Low trust, like any number a
phone reports: tier "self".
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from carbon.errors import EvidenceNotAccepted
from carbon.verifiers import PreparedEvidence, Verdict

MAX_STEPS_PER_DAY = 60_000
STRIDE_M = (Decimal("0.4"), Decimal("1.0"))


class StepCountVerifier:
    tier = "self"
    accepts_from_resident = True

    def prepare(
        self, *, user: Any, evidence: dict[str, Any], files: Mapping[str, Any]
    ) -> PreparedEvidence:
        steps = evidence.get("steps")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
            raise EvidenceNotAccepted("`evidence.steps` must be a positive whole number.")
        source = evidence.get("source", "pedometer")
        if not isinstance(source, str) or len(source) > 40:
            raise EvidenceNotAccepted("`evidence.source` is a short device name.")
        return PreparedEvidence(evidence={"steps": steps, "source": source})

    def verify(self, *, claim, prepared: PreparedEvidence) -> Verdict:
        steps = prepared.evidence["steps"]
        if steps > MAX_STEPS_PER_DAY:
            return Verdict(
                outcome="rejected",
                code="implausible_steps",
                reason=f"More than {MAX_STEPS_PER_DAY} steps is not a day's walk.",
            )
        metres = claim.quantity * 1000 if claim.behaviour.unit == "km" else None
        if metres is not None:
            stride = metres / steps
            if not STRIDE_M[0] <= stride <= STRIDE_M[1]:
                return Verdict(
                    outcome="needs_review",
                    code="distance_steps_mismatch",
                    reason=f"{steps} steps do not cover {claim.quantity} km.",
                    facts={"steps": steps, "stride_m": str(round(stride, 2))},
                )
        return Verdict(
            outcome="verified",
            code="steps_counted",
            reason=f"{steps} steps from the phone.",
            facts={"steps": steps},
        )
