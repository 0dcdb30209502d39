"""The low-trust adapter: the resident says it happened. Weighted lowest, capped by rules."""

from __future__ import annotations

from typing import Any

from carbon.errors import EvidenceNotAccepted
from carbon.verifiers import Verdict

MAX_NOTE = 500


class SelfDeclarationVerifier:
    tier = "self"

    def validate_evidence(self, evidence: dict[str, Any]) -> dict[str, Any]:
        note = evidence.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise EvidenceNotAccepted(
                f"A self declaration takes an optional note of at most {MAX_NOTE} characters.",
                details={"field": "evidence.note"},
            )
        unknown = sorted(set(evidence) - {"type", "note"})
        if unknown:
            raise EvidenceNotAccepted(
                "Unknown evidence fields for a self declaration.", details={"fields": unknown}
            )
        return {"note": note} if note else {}

    def verify(self, claim) -> Verdict:
        return Verdict(outcome="verified", code="self_declared", reason="Declared by the resident.")
