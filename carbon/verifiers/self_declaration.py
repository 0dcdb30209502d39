"""The low-trust adapter: the resident says it happened. Weighted lowest, capped by rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from carbon.errors import EvidenceNotAccepted
from carbon.verifiers import PreparedEvidence, Verdict

MAX_NOTE = 500


class SelfDeclarationVerifier:
    tier = "self"
    accepts_from_resident = True
    # verify() writes nothing and reads only the claim's fields: the claim is inserted once.
    verifies_unsaved_claim = True

    def prepare(
        self, *, user: Any, evidence: dict[str, Any], files: Mapping[str, Any]
    ) -> PreparedEvidence:
        if files:
            raise EvidenceNotAccepted(
                _("A self declaration takes no files."), details={"files": sorted(files)}
            )
        note = evidence.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise EvidenceNotAccepted(
                _("A self declaration takes an optional note of at most %(max)d characters.")
                % {"max": MAX_NOTE},
                details={"field": "evidence.note"},
            )
        unknown = sorted(set(evidence) - {"type", "note"})
        if unknown:
            raise EvidenceNotAccepted(
                _("Unknown evidence fields for a self declaration."), details={"fields": unknown}
            )
        return PreparedEvidence(evidence={"note": note} if note else {})

    def verify(self, *, claim, prepared: PreparedEvidence) -> Verdict:
        return Verdict(outcome="verified", code="self_declared", reason="Declared by the resident.")
