"""Verification adapters: the protocol, the verdict, and the registry.

An adapter turns a claim's evidence into a verdict. Adapters come from the
CARBON_VERIFIERS setting ({evidence type: dotted path}) and from packages that declare an
entry point in the `carbon.verifiers` group (name = evidence type, value = a class or
factory), so a new partner integration is a new package, not an edit of the core.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from carbon.models import Claim

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "carbon.verifiers"

Outcome = Literal["verified", "rejected", "needs_review"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str = ""
    code: str = ""
    # Evidence facts worth keeping on the receipt (never secrets or raw personal data).
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedEvidence:
    """What `prepare` made of the evidence: the JSON kept on the claim, plus anything the
    adapter wants to hand to `verify` (decoded image, looked-up trip, ...)."""

    evidence: dict[str, Any]
    payload: Any = None
    # When the evidence itself says when the act happened (a photo's capture time), a claim
    # sent without `occurred_at` takes it: caps and windows count the day of the act.
    occurred_at: datetime | None = None


@runtime_checkable
class Verifier(Protocol):
    """The adapter protocol.

    `prepare` runs before any write, outside the transaction: it checks and normalises the
    evidence (and uploaded files) and raises carbon.errors.EvidenceNotAccepted (a 400) for
    unusable input. `verify` runs inside the claim's transaction, once the claim row exists;
    it may store rows tied to the claim (a photo) and returns a Verdict.
    """

    #: evidence tier: "partner", "transit", "photo" or "self"; sets the tier weight.
    tier: str
    #: may residents submit this evidence through the API (False for operator feeds)?
    accepts_from_resident: bool

    def prepare(
        self, *, user: Any, evidence: dict[str, Any], files: Mapping[str, UploadedFile]
    ) -> PreparedEvidence: ...

    def verify(self, *, claim: Claim, prepared: PreparedEvidence) -> Verdict: ...

    # Optional: `verifies_unsaved_claim = True` declares that `verify` neither stores rows tied
    # to the claim nor needs its row: it then gets the claim unsaved (its id and fields set),
    # and the claim is inserted once, with its outcome, instead of inserted then updated.

    # Optional: `discard(*, prepared)` removes what `verify` wrote outside the database (files)
    # when the claim's transaction fails afterwards; a rollback cannot undo those.


def _load(target: Any) -> Verifier:
    obj = target() if callable(target) else target
    if not isinstance(obj, Verifier):
        raise TypeError(f"{target!r} does not implement the Verifier protocol")
    return obj


@cache
def registry() -> dict[str, Verifier]:
    """Evidence type -> adapter. Settings win over entry points of the same name."""
    found: dict[str, Verifier] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = _load(ep.load())
        except Exception:
            log.exception("verifier entry point %s failed to load", ep.name)
    for name, path in settings.CARBON_VERIFIERS.items():
        found[name] = _load(import_string(path))
    return found


def tiers() -> dict[str, str]:
    """Evidence type -> its adapter's tier, for rules that compare evidence strength."""
    return {name: verifier.tier for name, verifier in registry().items()}


def get_verifier(evidence_type: str) -> Verifier | None:
    return registry().get(evidence_type)


def reset_registry() -> None:
    registry.cache_clear()
