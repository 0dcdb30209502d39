"""Claims: submission, verification through an adapter, the rules, credit, and review."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from carbon.errors import (
    EvidenceNotAccepted,
    IdempotencyConflict,
    InvalidQuantity,
    InvalidReview,
    OutsideClaimWindow,
    UnknownBehaviour,
)
from carbon.models import Account, Behaviour, Claim, ClaimStatus, Partner, User
from carbon.services import rules
from carbon.services.ledger import account_for_user, ledger_award
from carbon.verifiers import Verdict, get_verifier


def _request_hash(**fields: Any) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _quantity(value: Any, behaviour: Behaviour) -> Decimal:
    try:
        q = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidQuantity("Quantity must be a number.") from None
    if not q.is_finite() or q <= 0:
        raise InvalidQuantity("Quantity must be a positive number.", details={"quantity": str(value)})
    if q != q.quantize(Decimal("0.001")):
        raise InvalidQuantity("Quantity takes at most 3 decimals.", details={"quantity": str(value)})
    if q > behaviour.max_quantity:
        raise InvalidQuantity(
            f"At most {behaviour.max_quantity} {behaviour.unit} per claim for {behaviour.name}.",
            details={"quantity": str(value), "max_quantity": str(behaviour.max_quantity)},
        )
    return q


def _receipt(*, verdict: Verdict, tier: str, evaluation: rules.Evaluation | None, status: str,
             credited_g: int, code: str, reason: str, history: list | None = None) -> dict:
    steps = [{"step": "verification", "outcome": verdict.outcome, "tier": tier,
              "code": verdict.code, "reason": verdict.reason, **({"facts": verdict.facts} if verdict.facts else {})}]
    if evaluation is not None:
        steps += evaluation.steps
    receipt = {"status": status, "credited_g": credited_g, "code": code, "reason": reason, "steps": steps}
    if history:
        receipt["history"] = history
    return receipt


def _apply_rules(*, claim: Claim, verdict: Verdict, tier: str, now: datetime) -> Claim:
    """Run the rules and credit. Caller holds the resident's account lock."""
    evaluation = rules.evaluate(claim=claim, tier=tier, now=now)
    claim.factor = evaluation.factor
    if evaluation.outcome != ClaimStatus.VERIFIED:
        claim.status = evaluation.outcome
        claim.credited_g = 0
        code, reason = evaluation.code, evaluation.reason
    else:
        behaviour = claim.behaviour
        award = ledger_award(
            user=claim.user,
            amount_g=evaluation.amount_g,
            category=behaviour.category,
            idempotency_key=f"claim:{claim.pk}:award",
            description=f"{behaviour.name}: {claim.quantity.normalize():f} {behaviour.unit}",
            expires_at=now + timedelta(days=behaviour.credit_lifetime_days),
            reference=f"claim:{claim.pk}",
        )
        evaluation.step("credit", "credited", amount_g=award.amount_g, transfer_id=award.pk,
                        expires_at=award.lot.expires_at.isoformat())
        claim.award = award
        claim.status = ClaimStatus.CREDITED
        claim.credited_g = award.amount_g
        code, reason = "credited", f"{award.amount_g} g credited."
    history = claim.receipt.get("history") if claim.receipt else None
    claim.receipt = _receipt(verdict=verdict, tier=tier, evaluation=evaluation, status=claim.status,
                             credited_g=claim.credited_g, code=code, reason=reason, history=history)
    claim.decided_at = now
    return claim


def claim_submit(
    *,
    user: User,
    behaviour_code: str,
    quantity: Any,
    idempotency_key: str,
    occurred_at: datetime | None = None,
    evidence_type: str = "self",
    evidence: dict[str, Any] | None = None,
    partner: Partner | None = None,
) -> tuple[Claim, bool]:
    """Create a claim, verify it and run the rules. Returns (claim, created).

    Bad input raises a DomainError before anything is written. A retry with the same key
    and payload returns the original claim; a different payload raises IdempotencyConflict.
    """
    evidence = dict(evidence or {})
    now = timezone.now()
    occurred = occurred_at or now
    if timezone.is_naive(occurred):
        raise OutsideClaimWindow("occurred_at needs a time zone offset.")
    request_hash = _request_hash(
        behaviour=behaviour_code, quantity=str(quantity), occurred_at=occurred_at.isoformat() if occurred_at else None,
        evidence_type=evidence_type, evidence=evidence, partner=partner.pk if partner else None,
    )
    existing = Claim.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.request_hash != request_hash:
            raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
        return existing, False

    behaviour = Behaviour.objects.filter(code=behaviour_code, is_active=True).first()
    if behaviour is None:
        raise UnknownBehaviour(details={"behaviour": behaviour_code})
    if evidence_type not in behaviour.evidence_types:
        raise EvidenceNotAccepted(
            f"{behaviour.name} accepts evidence of type: {', '.join(behaviour.evidence_types)}.",
            details={"evidence_type": evidence_type, "accepted": behaviour.evidence_types},
        )
    verifier = get_verifier(evidence_type)
    if verifier is None:
        raise EvidenceNotAccepted(
            f"No verification adapter is installed for evidence of type '{evidence_type}'.",
            details={"evidence_type": evidence_type},
        )
    q = _quantity(quantity, behaviour)
    problem = rules.window_problem(behaviour=behaviour, occurred_at=occurred, reference=now)
    if problem:
        raise OutsideClaimWindow(problem, details={"occurred_at": occurred.isoformat()})
    clean_evidence = verifier.validate_evidence(evidence)

    try:
        with transaction.atomic():
            # One resident's claims are decided one at a time, so caps can't be raced.
            account = account_for_user(user=user)
            Account.objects.select_for_update().filter(pk=account.pk).first()
            claim = Claim.objects.create(
                user=user, behaviour=behaviour, quantity=q, occurred_at=occurred,
                evidence_type=evidence_type, evidence=clean_evidence, partner=partner,
                idempotency_key=idempotency_key, request_hash=request_hash,
            )
            verdict = verifier.verify(claim)
            tier = verifier.tier
            if verdict.outcome == "verified":
                _apply_rules(claim=claim, verdict=verdict, tier=tier, now=now)
            else:
                claim.status = ClaimStatus.REJECTED if verdict.outcome == "rejected" else ClaimStatus.NEEDS_REVIEW
                claim.receipt = _receipt(verdict=verdict, tier=tier, evaluation=None, status=claim.status,
                                         credited_g=0, code=verdict.code, reason=verdict.reason)
                claim.decided_at = now if claim.status == ClaimStatus.REJECTED else None
            claim.save()
            return claim, True
    except IntegrityError:
        # A concurrent retry with the same key won the race.
        existing = Claim.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        if existing.request_hash != request_hash:
            raise IdempotencyConflict(details={"idempotency_key": idempotency_key}) from None
        return existing, False


def claim_review(*, claim_id: Any, reviewer: User, approve: bool, note: str = "") -> Claim:
    """Decide a claim in the review queue. Approval runs the same rules and ledger."""
    with transaction.atomic():
        claim = Claim.objects.select_related("behaviour", "user").get(pk=claim_id)
        Account.objects.select_for_update().filter(pk=account_for_user(user=claim.user).pk).first()
        claim = Claim.objects.select_for_update().select_related("behaviour", "user").get(pk=claim_id)
        if claim.status != ClaimStatus.NEEDS_REVIEW:
            raise InvalidReview(f"Only claims that need review can be decided; this one is {claim.status}.")
        now = timezone.now()
        verifier = get_verifier(claim.evidence_type)
        tier = verifier.tier if verifier is not None else claim.evidence_type
        history = list(claim.receipt.get("history", [])) + [{
            "at": now.isoformat(), "reviewer": reviewer.pk, "decision": "approved" if approve else "rejected",
            "note": note, "previous": {k: claim.receipt.get(k) for k in ("status", "code", "reason")},
        }]
        claim.receipt = {**claim.receipt, "history": history}
        claim.reviewed_by, claim.review_note = reviewer, note
        if approve:
            verdict = Verdict(outcome="verified", code="approved_by_reviewer", reason=note or "Approved on review.")
            _apply_rules(claim=claim, verdict=verdict, tier=tier, now=now)
        else:
            claim.status = ClaimStatus.REJECTED
            claim.decided_at = now
            claim.receipt = {**claim.receipt, "status": claim.status, "code": "rejected_by_reviewer",
                             "reason": note or "Rejected on review.", "credited_g": 0}
        claim.save()
        return claim
