"""The crediting rules, in the designed order, each step written to the claim's receipt.

eligibility (consent, claim window) -> quantity -> factor -> evidence-tier weight ->
per-action cap -> daily / monthly cap -> throttle -> credit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from carbon.clock import CLOCK_SKEW, day_bounds, month_bounds
from carbon.models import Behaviour, Claim, ClaimStatus, Consent, EmissionFactor, PenaltyBox

CONSENT_TIERS = {"partner", "transit"}


@dataclass
class Evaluation:
    steps: list[dict[str, Any]] = field(default_factory=list)
    amount_g: int = 0
    outcome: str = ClaimStatus.VERIFIED  # or rejected / needs_review
    code: str = ""
    reason: str = ""
    factor: EmissionFactor | None = None
    held_until: datetime | None = None

    def step(self, name: str, outcome: str, **detail: Any) -> None:
        self.steps.append({"step": name, "outcome": outcome, **detail})

    def stop(self, name: str, status: str, code: str, reason: str, **detail: Any) -> Evaluation:
        self.step(
            name,
            "refused" if status == ClaimStatus.REJECTED else "held",
            code=code,
            reason=reason,
            **detail,
        )
        self.outcome, self.code, self.reason, self.amount_g = status, code, reason, 0
        return self


def _credited_between(claim: Claim, start: datetime, end: datetime) -> int:
    return (
        Claim.objects.filter(
            user_id=claim.user_id,
            behaviour_id=claim.behaviour_id,
            status=ClaimStatus.CREDITED,
            occurred_at__gte=start,
            occurred_at__lt=end,
        )
        .exclude(pk=claim.pk)
        .aggregate(s=Sum("credited_g"))["s"]
        or 0
    )


TIER_RANK = {"self": 1, "photo": 2, "transit": 3, "partner": 4}


def _same_act(
    claim: Claim, tier: str, tier_of_evidence: Mapping[str, str]
) -> tuple[Claim | None, list[Claim]]:
    """Credited claims of the same behaviour by other evidence types close in time: the same
    act seen twice (a card trip and a photo of the ride). Returns the first one with
    stronger-or-equal evidence, and the list of those with weaker evidence (one query)."""
    window = timedelta(minutes=settings.CARBON_SAME_ACT_MINUTES)
    others = (
        Claim.objects.filter(
            user_id=claim.user_id,
            behaviour_id=claim.behaviour_id,
            status=ClaimStatus.CREDITED,
            occurred_at__gte=claim.occurred_at - window,
            occurred_at__lte=claim.occurred_at + window,
        )
        .exclude(pk=claim.pk)
        .exclude(evidence_type=claim.evidence_type)
        .order_by("occurred_at")
    )
    rank = TIER_RANK.get(tier, 0)

    def tier_of(c: Claim) -> int:
        return TIER_RANK.get(tier_of_evidence.get(c.evidence_type, c.evidence_type), 0)

    found = list(others)
    stronger = next((c for c in found if tier_of(c) >= rank), None)
    return stronger, [c for c in found if tier_of(c) < rank]


def penalty_check(*, claim: Claim, now: datetime) -> datetime | None:
    """Hold the claim if the resident is in the penalty box or has just earned a stay in it.

    A burst beyond the rate puts the resident in the box for the base period, doubled at
    each new burst within a day; a day without bursts resets the level.
    """
    box = PenaltyBox.objects.select_for_update().filter(user_id=claim.user_id).first()
    if box is not None and box.until > now:
        return box.until
    window = timedelta(minutes=settings.CARBON_THROTTLE_WINDOW_MINUTES)
    recent = (
        Claim.objects.filter(
            user_id=claim.user_id, partner__isnull=True, submitted_at__gte=now - window
        )
        .exclude(pk=claim.pk)
        .count()
    )
    if recent < settings.CARBON_THROTTLE_ACTIONS:
        return None
    base = timedelta(minutes=settings.CARBON_PENALTY_BASE_MINUTES)
    if box is None:
        box = PenaltyBox(user_id=claim.user_id, level=0, until=now, last_triggered_at=now)
    elif now - box.last_triggered_at > timedelta(days=1):
        box.level = 0
    box.level = min(box.level + 1, 10)
    box.until = now + base * (2 ** (box.level - 1))
    box.last_triggered_at = now
    box.save()
    return box.until


def window_problem(
    *, behaviour: Behaviour, occurred_at: datetime, reference: datetime
) -> str | None:
    if occurred_at > reference + CLOCK_SKEW:
        return "The behaviour cannot have happened in the future."
    if occurred_at < reference - timedelta(days=behaviour.claim_window_days):
        return (
            f"Claims for {behaviour.name} must be made within {behaviour.claim_window_days} days."
        )
    return None


def evaluate(
    *,
    claim: Claim,
    tier: str,
    now: datetime | None = None,
    skip_throttle: bool = False,
    factor_fallback_at: datetime | None = None,
    tier_of_evidence: Mapping[str, str] | None = None,
) -> Evaluation:
    """Run every rule after verification. Reads, except that step 7 may put the resident in
    the penalty box; the caller writes the claim's outcome. `tier_of_evidence` maps evidence
    types to their tier (from the verifier registry), for the one-act-one-credit rule."""
    now = now or timezone.now()
    ev = Evaluation()
    behaviour = claim.behaviour

    # 1. eligibility
    if tier in CONSENT_TIERS and behaviour.consent_scope:
        if not Consent.objects.in_force(user=claim.user, scope=behaviour.consent_scope):
            return ev.stop(
                "eligibility",
                ClaimStatus.REJECTED,
                "no_consent",
                f"No current consent for the data source '{behaviour.consent_scope}'.",
            )
    problem = window_problem(
        behaviour=behaviour, occurred_at=claim.occurred_at, reference=claim.submitted_at
    )
    if problem:
        return ev.stop("eligibility", ClaimStatus.REJECTED, "outside_claim_window", problem)
    stronger, weaker = _same_act(claim, tier, tier_of_evidence or {})
    if stronger is not None:
        return ev.stop(
            "eligibility",
            ClaimStatus.REJECTED,
            "already_credited_by_stronger_evidence",
            f"This act was already credited from {stronger.evidence_type} evidence "
            f"(claim {stronger.pk}); one act earns once.",
            other_claim=str(stronger.pk),
        )
    ev.step("eligibility", "passed", claim_window_days=behaviour.claim_window_days)

    # 2. quantity
    if claim.quantity <= 0 or claim.quantity > behaviour.max_quantity:
        return ev.stop(
            "quantity",
            ClaimStatus.REJECTED,
            "invalid_quantity",
            f"Quantity must be above 0 and at most {behaviour.max_quantity} {behaviour.unit}.",
        )
    ev.step("quantity", "passed", quantity=str(claim.quantity), unit=behaviour.unit)

    # 3. factor
    factor = EmissionFactor.objects.for_claim(
        behaviour=behaviour, when=claim.occurred_at, district=claim.user.district
    )
    if factor is None and factor_fallback_at is not None:
        # On review: no factor covered the act, so the one in force now applies (a factor
        # published to resolve the queue starts today, after the act).
        factor = EmissionFactor.objects.for_claim(
            behaviour=behaviour, when=factor_fallback_at, district=claim.user.district
        )
    if factor is None:
        return ev.stop(
            "factor",
            ClaimStatus.NEEDS_REVIEW,
            "no_factor",
            "No emission factor is in force for this behaviour and date; an administrator will review it.",
        )
    ev.factor = factor
    gross = factor.grams_for(claim.quantity)
    ev.step(
        "factor",
        "applied",
        factor_id=factor.pk,
        version=factor.version,
        grams_per_unit=str(factor.grams_per_unit),
        unit=factor.unit,
        methodology=factor.methodology,
        source=factor.source,
        gross_g=gross,
    )

    # 4. evidence-tier weight
    weight_bp = settings.CARBON_TIER_WEIGHTS_BP.get(tier, 0)
    amount = gross * weight_bp // 10000
    ev.step("tier_weight", "applied", tier=tier, weight_percent=weight_bp / 100, amount_g=amount)

    # Mutually exclusive evidence: weaker evidence already credited for the same act is
    # deducted, so the act earns once, at the stronger evidence's rate.
    if weaker:
        already = sum(c.credited_g for c in weaker)
        cut = min(amount, already)
        amount -= cut
        ev.step("exclusive_evidence", "cut", cut_g=cut, other_claims=[str(c.pk) for c in weaker])
        if amount == 0:
            ev.outcome, ev.code = ClaimStatus.REJECTED, "already_credited"
            ev.reason = "This act was already credited in full from other evidence."
            return ev

    # 5. per-action cap
    if behaviour.per_action_cap_g is not None and amount > behaviour.per_action_cap_g:
        ev.step(
            "per_action_cap",
            "cut",
            cap_g=behaviour.per_action_cap_g,
            cut_g=amount - behaviour.per_action_cap_g,
        )
        amount = behaviour.per_action_cap_g
    else:
        ev.step("per_action_cap", "passed", cap_g=behaviour.per_action_cap_g)

    # 6. daily / monthly caps
    for name, cap, bounds in (
        ("daily_cap", behaviour.daily_cap_g, day_bounds),
        ("monthly_cap", behaviour.monthly_cap_g, month_bounds),
    ):
        if cap is None:
            ev.step(name, "passed", cap_g=None)
            continue
        used = _credited_between(claim, *bounds(claim.occurred_at))
        left = max(0, cap - used)
        if amount > left:
            ev.step(name, "cut", cap_g=cap, already_credited_g=used, cut_g=amount - left)
            amount = left
        else:
            ev.step(name, "passed", cap_g=cap, already_credited_g=used)
    if amount == 0:
        cut_by = next((s for s in reversed(ev.steps) if s["outcome"] == "cut"), None)
        ev.outcome = ClaimStatus.REJECTED
        if cut_by is not None and cut_by["step"] in ("per_action_cap", "daily_cap", "monthly_cap"):
            cut_by["code"] = ev.code = "cap_reached"
            ev.reason = (
                "The cap for this behaviour is already reached; nothing more can be credited."
            )
        else:
            ev.code = "below_one_gram"
            ev.reason = "This quantity earns less than one whole gram; nothing to credit."
        return ev

    # 7. throttle and penalty box (resident-submitted claims only: feeds are not bursts)
    if skip_throttle:
        ev.step("throttle", "passed", reason="released after the penalty period")
    elif claim.partner_id is not None:
        ev.step("throttle", "passed", reason="partner feed")
    else:
        held_until = penalty_check(claim=claim, now=now)
        if held_until is not None:
            ev.held_until = held_until
            return ev.stop(
                "throttle",
                ClaimStatus.HELD,
                "penalty_box",
                f"Too many claims in a short time (more than {settings.CARBON_THROTTLE_ACTIONS} in "
                f"{settings.CARBON_THROTTLE_WINDOW_MINUTES} minutes). This claim is held and will be "
                f"decided after {timezone.localtime(held_until):%Y-%m-%d %H:%M}.",
                held_until=held_until.isoformat(),
            )
        ev.step("throttle", "passed")

    ev.amount_g = amount
    return ev
