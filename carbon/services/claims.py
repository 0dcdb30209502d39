"""Claims: submission, verification through an adapter, the rules, credit, review, holds
and appeals."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from carbon.errors import (
    DomainError,
    EvidenceNotAccepted,
    IdempotencyConflict,
    InvalidQuantity,
    InvalidReview,
    OutsideClaimWindow,
    UnknownBehaviour,
)
from carbon.models import (
    Appeal,
    AppealStatus,
    Behaviour,
    Claim,
    ClaimStatus,
    Partner,
    User,
)
from carbon.services import rules
from carbon.services.catalogue import CatalogueSnapshot, behaviour_active, catalogue_snapshot
from carbon.services.ledger import ledger_award, payload_hash
from carbon.services.people import AccountClosed, resident_lock
from carbon.services.residents import resident_require
from carbon.verifiers import PreparedEvidence, Verdict, get_verifier, tiers


def _file_digest(f: UploadedFile) -> str:
    h = hashlib.sha256()
    for chunk in f.chunks():
        h.update(chunk)
    f.seek(0)
    return h.hexdigest()


def parsed_quantity(*, value: Any, behaviour: Behaviour) -> Decimal:
    """A claim's quantity as sent, checked (a positive number, at most 3 decimals, at most
    the behaviour's maximum: InvalidQuantity says what is wrong) and quantized."""
    try:
        q = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidQuantity(_("Quantity must be a number.")) from None
    if not q.is_finite() or q <= 0:
        raise InvalidQuantity(
            _("Quantity must be a positive number."), details={"quantity": str(value)}
        )
    if q != q.quantize(Decimal("0.001")):
        raise InvalidQuantity(
            _("Quantity takes at most 3 decimals."), details={"quantity": str(value)}
        )
    if q > behaviour.max_quantity:
        raise InvalidQuantity(
            _("At most %(max_quantity)s %(unit)s per claim for %(behaviour)s.")
            % {
                "max_quantity": behaviour.max_quantity,
                "unit": behaviour.unit,
                "behaviour": behaviour.name,
            },
            details={"quantity": str(value), "max_quantity": str(behaviour.max_quantity)},
        )
    return q.quantize(Decimal("0.001"))


def _canonical_quantity(value: Any) -> str:
    """The same number sent as 12.4 or "12.40" is the same request."""
    try:
        return format(Decimal(str(value)).normalize(), "f")
    except (InvalidOperation, ValueError):
        return str(value)


def claim_request_hash(
    *,
    behaviour_code: str,
    quantity: Any,
    occurred_at: datetime | None,
    evidence_type: str,
    evidence: Mapping[str, Any],
    partner: Partner | None,
    files: Mapping[str, UploadedFile] | None = None,
    force_review: str = "",
) -> str:
    """The digest of a claim's request, stored on the claim: a retry under the same
    idempotency key must send the same request (IdempotencyConflict otherwise). Files count
    by their content; the quantity by its value."""
    fields = {
        "behaviour": behaviour_code,
        "quantity": _canonical_quantity(quantity),
        "occurred_at": occurred_at.isoformat() if occurred_at else None,
        "evidence_type": evidence_type,
        "evidence": evidence,
        "partner": partner.pk if partner else None,
        "files": {name: _file_digest(f) for name, f in sorted((files or {}).items())},
        "force_review": force_review,
    }
    return payload_hash(fields)  # the ledger's digest of a payload: one way to hash a request


def _tier(evidence_type: str) -> str:
    verifier = get_verifier(evidence_type)
    return verifier.tier if verifier is not None else evidence_type


def claim_receipt(
    *,
    verdict: Verdict,
    tier: str,
    evaluation: rules.Evaluation | None,
    status: str,
    credited_g: int,
    code: str,
    reason: str,
    history: list | None = None,
) -> dict:
    """A claim's receipt: its outcome, then every step that decided it (the adapter's
    verification first, then the rules' steps from `evaluation`), and its history of
    reviews and releases."""
    steps = [
        {
            "step": "verification",
            "outcome": verdict.outcome,
            "tier": tier,
            "code": verdict.code,
            "reason": verdict.reason,
            **({"facts": verdict.facts} if verdict.facts else {}),
        }
    ]
    if evaluation is not None:
        steps += evaluation.steps
    receipt = {
        "status": status,
        "credited_g": credited_g,
        "code": code,
        "reason": reason,
        "steps": steps,
    }
    if history:
        receipt["history"] = history
    return receipt


def claim_award_terms(*, claim: Claim, amount_g: int, now: datetime) -> dict[str, Any]:
    """A credited claim's award as ledger_award takes it (but the resident): its key,
    category, description, expiry and reference. The bulk feed path (claims_bulk) writes
    the same, so a batch retried one claim at a time finds its awards by key."""
    behaviour = claim.behaviour
    return {
        "amount_g": amount_g,
        "category": behaviour.category,
        "idempotency_key": f"claim:{claim.pk}:award",
        "description": f"{behaviour.name}: {claim.quantity.normalize():f} {behaviour.unit}",
        "expires_at": now + timedelta(days=behaviour.credit_lifetime_days),
        "reference": f"claim:{claim.pk}",
    }


class _RetryWon(Exception):
    """Under the resident's lock, a claim with the request's idempotency key was found: a
    concurrent retry committed first (handled as the unique index's IntegrityError is)."""


def _apply_rules(
    *,
    claim: Claim,
    verdict: Verdict,
    tier: str,
    now: datetime,
    skip_throttle: bool = False,
    on_review: bool = False,
    idempotency_key: str | None = None,
    resident: User | None = None,
    catalogue: CatalogueSnapshot | None = None,
) -> Claim:
    """Run the rules and credit. Caller holds the resident's account lock. With
    `idempotency_key` (a new claim not inserted yet) the one read of the rule inputs also
    looks for a claim with that key, and raises _RetryWon before anything is credited.
    `resident`: the row the lock returned (lock_resident(with_account=True)), whose ledger
    account the award takes rather than looking it up again. `catalogue`: the snapshot the
    claim's behaviour came from (its factors are read from it too)."""
    tier_of_evidence = tiers()
    facts = rules.rule_facts_read(
        claim=claim,
        tier=tier,
        now=now,
        skip_throttle=skip_throttle,
        on_review=on_review,
        tier_of_evidence=tier_of_evidence,
        idempotency_key=idempotency_key,
    )
    if facts.duplicate_id is not None:
        raise _RetryWon()
    evaluation = rules.evaluate(
        claim=claim,
        tier=tier,
        now=now,
        skip_throttle=skip_throttle,
        factor_fallback_at=now if on_review else None,
        tier_of_evidence=tier_of_evidence,
        on_review=on_review,
        facts=facts,
        catalogue=catalogue,
    )
    if on_review and evaluation.code == "no_factor":
        raise InvalidReview(
            _("No emission factor covers this behaviour yet: publish one, then approve."),
            details={"behaviour": claim.behaviour.code},
        )
    claim.factor = evaluation.factor
    claim.held_until = evaluation.held_until
    if evaluation.outcome != ClaimStatus.VERIFIED:
        claim.status = evaluation.outcome
        claim.credited_g = 0
        code, reason = evaluation.code, evaluation.reason
    else:
        award = ledger_award(
            user=claim.user,
            **claim_award_terms(claim=claim, amount_g=evaluation.amount_g, now=now),
            # None (a resident not credited before, or no row read): ledger_award opens it.
            account=getattr(resident, "ledger_account", None),
        )
        evaluation.step(
            "credit",
            "credited",
            amount_g=award.amount_g,
            transfer_id=award.pk,
            expires_at=award.lot.expires_at.isoformat(),
        )
        claim.award = award
        claim.status = ClaimStatus.CREDITED
        claim.credited_g = award.amount_g
        code, reason = "credited", f"{award.amount_g} g credited."
    history = claim.receipt.get("history") if claim.receipt else None
    claim.receipt = claim_receipt(
        verdict=verdict,
        tier=tier,
        evaluation=evaluation,
        status=claim.status,
        credited_g=claim.credited_g,
        code=code,
        reason=reason,
        history=history,
    )
    claim.decided_at = now if claim.status in (ClaimStatus.CREDITED, ClaimStatus.REJECTED) else None
    return claim


@contextmanager
def _discarding_on_failure(verifier, prepared: PreparedEvidence):
    """If the claim's transaction fails, let the adapter remove what it wrote outside the
    database (a photo's files): a rollback cannot."""
    try:
        yield
    except BaseException:
        discard = getattr(verifier, "discard", None)
        if discard is not None:
            discard(prepared=prepared)
        raise


def _existing(user: User, idempotency_key: str, request_hash: str) -> Claim | None:
    """The resident's claim with this key: a retry gets it back, a different request with
    the same key is refused (IdempotencyConflict)."""
    existing = Claim.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if existing is not None and existing.request_hash != request_hash:
        raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
    return existing


def _insert_decided(claim: Claim) -> None:
    """The claim's one write: an INSERT with its outcome. Saved raw (as it stands), so that
    submitted_at is the decision's `now` the rules counted with; auto_now_add would stamp a
    later moment of its own. Nothing else differs: no parents, no field's pre_save."""
    claim.save_base(raw=True, force_insert=True)


def lock_resident(*, user: User, allow_closed: bool = False, with_account: bool = False) -> User:
    """One resident's claims are decided one at a time, so caps can't be raced; and never
    beside an erasure of the resident (people.resident_lock: the same row user_erase locks
    first; an erased or deactivated account is refused with AccountClosed). `with_account`:
    the resident's ledger account comes in the same statement (`.ledger_account`), for an
    award."""
    return resident_lock(user=user, allow_closed=allow_closed, with_account=with_account)


def _validated(
    *,
    user: User,
    behaviour_code: str,
    quantity: Any,
    occurred_at: datetime | None,
    occurred: datetime,
    now: datetime,
    evidence_type: str,
    evidence: dict[str, Any],
    files: dict[str, UploadedFile],
    from_resident: bool,
    force_review: str,
    catalogue: CatalogueSnapshot,
) -> tuple[Behaviour, Any, Decimal, datetime, PreparedEvidence]:
    """Check a new claim's input before anything is written (a DomainError names what is
    wrong); returns the behaviour, its adapter, the quantity, the act's time and the
    prepared evidence."""
    # The cached catalogue: no statement.
    behaviour = behaviour_active(code=behaviour_code, catalogue=catalogue)
    if behaviour is None:
        raise UnknownBehaviour(details={"behaviour": behaviour_code})
    # A missed-credit appeal goes to a reviewer whatever evidence the behaviour usually takes.
    if evidence_type not in behaviour.evidence_types and not force_review:
        raise EvidenceNotAccepted(
            _("%(behaviour)s accepts evidence of type: %(accepted)s.")
            % {"behaviour": behaviour.name, "accepted": ", ".join(behaviour.evidence_types)},
            details={"evidence_type": evidence_type, "accepted": behaviour.evidence_types},
        )
    verifier = get_verifier(evidence_type)
    if verifier is None:
        raise EvidenceNotAccepted(
            _("No verification adapter is installed for evidence of type '%(evidence_type)s'.")
            % {"evidence_type": evidence_type},
            details={"evidence_type": evidence_type},
        )
    if from_resident and not verifier.accepts_from_resident:
        raise EvidenceNotAccepted(
            _("Evidence of type '%(evidence_type)s' comes from partner feeds only.")
            % {"evidence_type": evidence_type},
            details={"evidence_type": evidence_type},
        )
    q = parsed_quantity(value=quantity, behaviour=behaviour)
    problem = rules.window_problem(behaviour=behaviour, occurred_at=occurred, reference=now)
    if problem:
        raise OutsideClaimWindow(problem, details={"occurred_at": occurred.isoformat()})
    prepared: PreparedEvidence = verifier.prepare(user=user, evidence=evidence, files=files)
    if (
        occurred_at is None
        and prepared.occurred_at is not None
        and rules.window_problem(
            behaviour=behaviour, occurred_at=prepared.occurred_at, reference=now
        )
        is None
    ):
        # The evidence dates the act; out of the window, the adapter refuses it on the
        # receipt (kept for an appeal), so the claim keeps the submission time then.
        occurred = prepared.occurred_at
    return behaviour, verifier, q, occurred, prepared


def claim_submit(
    *,
    user: User,
    behaviour_code: str,
    quantity: Any,
    idempotency_key: str,
    occurred_at: datetime | None = None,
    evidence_type: str = "self",
    evidence: dict[str, Any] | None = None,
    files: Mapping[str, UploadedFile] | None = None,
    partner: Partner | None = None,
    from_resident: bool = True,
    force_review: str = "",
) -> tuple[Claim, bool]:
    """Create a claim, verify it through its adapter and run the rules. Returns (claim, created).

    Bad input raises a DomainError before anything is written. A retry with the same key
    and payload returns the original claim; a different payload raises IdempotencyConflict.
    `force_review` sends the claim to the review queue with that reason (missed-credit appeals).
    Only residents claim (NotAResident), whoever submits for them: the API, a partner feed
    or an appeal.
    """
    resident_require(user=user)
    evidence = dict(evidence or {})
    files = dict(files or {})
    now = timezone.now()
    occurred = occurred_at or now
    if timezone.is_naive(occurred):
        raise OutsideClaimWindow(_("occurred_at needs a time zone offset."))
    request_hash = claim_request_hash(
        behaviour_code=behaviour_code,
        quantity=quantity,
        occurred_at=occurred_at,
        evidence_type=evidence_type,
        evidence=evidence,
        partner=partner,
        files=files,
        force_review=force_review,
    )
    verifier = get_verifier(evidence_type)
    # A retry returns the original whatever changed since (the catalogue, the window). An
    # adapter whose claim is inserted once, decided (verifies_unsaved_claim: cheap to
    # prepare), needs no look-up first: the rules' read under the lock finds the retry, and
    # bad input looks only then. Any other looks first (a photo is costly to prepare).
    look_first = not getattr(verifier, "verifies_unsaved_claim", False)
    if look_first and (existing := _existing(user, idempotency_key, request_hash)) is not None:
        return existing, False
    # One catalogue version for the whole decision (the behaviour and its factor): one read
    # of the shared version token (catalogue.catalogue_snapshot).
    catalogue = catalogue_snapshot()
    try:
        behaviour, verifier, q, occurred, prepared = _validated(
            user=user,
            behaviour_code=behaviour_code,
            quantity=quantity,
            occurred_at=occurred_at,
            occurred=occurred,
            now=now,
            evidence_type=evidence_type,
            evidence=evidence,
            files=files,
            from_resident=from_resident,
            force_review=force_review,
            catalogue=catalogue,
        )
    except DomainError:
        if not look_first and (existing := _existing(user, idempotency_key, request_hash)):
            return existing, False
        raise

    # An adapter that stores rows tied to the claim (a photo) needs the claim's row first:
    # inserted as received, updated with the outcome. One that declares it verifies an
    # unsaved claim gets the claim inserted once, decided (Verifier.verifies_unsaved_claim).
    insert_first = not getattr(verifier, "verifies_unsaved_claim", False)
    try:
        with _discarding_on_failure(verifier, prepared), transaction.atomic():
            resident = lock_resident(user=user, with_account=True)
            claim = Claim(
                user=user,
                behaviour=behaviour,
                quantity=q,
                occurred_at=occurred,
                evidence_type=evidence_type,
                evidence=prepared.evidence,
                partner=partner,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
            )
            if insert_first:
                claim.save(force_insert=True)
            claim.submitted_at = now
            verdict = verifier.verify(claim=claim, prepared=prepared)
            tier = verifier.tier
            if force_review and verdict.outcome != "rejected":
                verdict = Verdict(
                    outcome="needs_review",
                    code="missed_credit_appeal",
                    reason=force_review,
                    facts=verdict.facts,
                )
            if verdict.outcome == "verified":
                # Not inserted yet: the unique index cannot stop a retry before the credit,
                # so the rules' read looks for one under the lock.
                _apply_rules(
                    claim=claim,
                    verdict=verdict,
                    tier=tier,
                    now=now,
                    idempotency_key=None if insert_first else idempotency_key,
                    resident=resident,
                    catalogue=catalogue,
                )
            else:
                claim.status = (
                    ClaimStatus.REJECTED
                    if verdict.outcome == "rejected"
                    else ClaimStatus.NEEDS_REVIEW
                )
                claim.receipt = claim_receipt(
                    verdict=verdict,
                    tier=tier,
                    evaluation=None,
                    status=claim.status,
                    credited_g=0,
                    code=verdict.code,
                    reason=verdict.reason,
                )
                claim.decided_at = now if claim.status == ClaimStatus.REJECTED else None
            if insert_first:
                claim.save()
            else:
                _insert_decided(claim)
            return claim, True
    except (IntegrityError, _RetryWon):
        # A retry with the same key came first (concurrent, or found by the rules' read).
        existing = _existing(user, idempotency_key, request_hash)
        if existing is None:
            raise
        return existing, False


def claim_submit_from_feed(
    *,
    user: User,
    behaviour_code: str,
    quantity: Any,
    occurred_at: datetime,
    evidence_type: str,
    evidence: dict[str, Any],
    partner: Partner,
    idempotency_key: str,
) -> tuple[Claim, bool]:
    """A claim made by a partner feed on a resident's behalf (a card trip, a partner event):
    evidence that residents may not submit themselves is accepted, and feeds are never
    throttled as bursts. Idempotent by the feed's own key for the record."""
    return claim_submit(
        user=user,
        behaviour_code=behaviour_code,
        quantity=quantity,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        evidence_type=evidence_type,
        evidence=evidence,
        partner=partner,
        from_resident=False,
    )


def history_entry(claim: Claim, now: datetime, **fields: Any) -> list:
    return list(claim.receipt.get("history", [])) + [
        {
            "at": now.isoformat(),
            **fields,
            "previous": {k: claim.receipt.get(k) for k in ("status", "code", "reason")},
        }
    ]


def claim_review(*, claim_id: Any, reviewer: User, approve: bool, note: str = "") -> Claim:
    """Decide a claim in the review queue. Approval runs the same rules and ledger; an open
    appeal on the claim is closed with the same decision."""
    with transaction.atomic():
        claim = Claim.objects.select_related("user").get(pk=claim_id)
        # A closed account's claims can still be rejected (to clear the queue), not credited.
        resident = lock_resident(user=claim.user, allow_closed=True, with_account=True)
        if approve and (resident.erased_at or not resident.is_active):
            raise AccountClosed(
                _(
                    "The resident's account is erased or deactivated: nothing can be credited "
                    "to it; reject the claim instead."
                )
            )
        claim = (
            Claim.objects.select_for_update().select_related("behaviour", "user").get(pk=claim_id)
        )
        if claim.status != ClaimStatus.NEEDS_REVIEW:
            raise InvalidReview(
                _("Only claims that need review can be decided; this one is %(status)s.")
                % {"status": claim.status}
            )
        now = timezone.now()
        tier = _tier(claim.evidence_type)
        claim.receipt = {
            **claim.receipt,
            "history": history_entry(
                claim,
                now,
                event="review",
                reviewer=reviewer.pk,
                decision="approved" if approve else "rejected",
                note=note,
            ),
        }
        claim.reviewed_by, claim.review_note = reviewer, note
        if approve:
            verdict = Verdict(
                outcome="verified",
                code="approved_by_reviewer",
                reason=note or "Approved on review.",
            )
            _apply_rules(
                claim=claim,
                verdict=verdict,
                tier=tier,
                now=now,
                skip_throttle=True,
                on_review=True,
                resident=resident,
            )
        else:
            claim.status = ClaimStatus.REJECTED
            claim.decided_at = now
            claim.receipt = {
                **claim.receipt,
                "status": claim.status,
                "code": "rejected_by_reviewer",
                "reason": note or "Rejected on review.",
                "credited_g": 0,
            }
        claim.save()
        # The appeal says what its decision did: an approval the caps leave at 0 g says so,
        # with the receipt's code and reason (cap_reached, ...).
        Appeal.objects.filter(claim=claim, status=AppealStatus.OPEN).update(
            status=AppealStatus.APPROVED if approve else AppealStatus.REJECTED,
            decided_at=now,
            decided_by=reviewer,
            decision_note=note,
            credited_g=claim.credited_g,
            outcome_code=str(claim.receipt.get("code", ""))[:64],
            outcome_reason=str(claim.receipt.get("reason", ""))[:500],
        )
        return claim


def claims_release_held(*, now: datetime | None = None) -> int:
    """Decide held claims whose penalty period is over (the periodic job)."""
    now = now or timezone.now()
    released = 0
    held = Claim.objects.filter(
        status=ClaimStatus.HELD,
        held_until__lte=now,
        user__erased_at__isnull=True,
        user__is_active=True,
        # A resident who became staff since earns nothing (ledger_award would refuse it and
        # stop the job); the claim stays held, as a closed account's does.
        user__role=User.Role.RESIDENT,
    )
    for claim_id in held.values_list("pk", flat=True):
        with transaction.atomic():
            claim = Claim.objects.select_related("user").get(pk=claim_id)
            resident = lock_resident(user=claim.user, allow_closed=True, with_account=True)
            if resident.erased_at or not resident.is_active:
                continue  # closed since the query: nothing to credit to it
            claim = (
                Claim.objects.select_for_update()
                .select_related("behaviour", "user")
                .get(pk=claim_id)
            )
            if claim.status != ClaimStatus.HELD:
                continue
            claim.receipt = {
                **claim.receipt,
                "history": history_entry(claim, now, event="released"),
            }
            verdict = Verdict(
                outcome="verified",
                code="released_from_hold",
                reason="Verified earlier; decided after the penalty period.",
            )
            _apply_rules(
                claim=claim,
                verdict=verdict,
                tier=_tier(claim.evidence_type),
                now=now,
                skip_throttle=True,
                resident=resident,
            )
            claim.save()
            released += 1
    return released
