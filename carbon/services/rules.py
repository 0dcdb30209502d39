"""The crediting rules, in the designed order, each step written to the claim's receipt.

eligibility (consent, claim window) -> quantity -> factor -> evidence-tier weight ->
per-action cap -> daily / monthly cap -> throttle -> credit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from carbon.models import Behaviour, Claim, ClaimStatus, EmissionFactor

# A phone clock may run a little ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)
CONSENT_TIERS = {"partner", "transit"}


@dataclass
class Evaluation:
    steps: list[dict[str, Any]] = field(default_factory=list)
    amount_g: int = 0
    outcome: str = ClaimStatus.VERIFIED  # or rejected / needs_review
    code: str = ""
    reason: str = ""
    factor: EmissionFactor | None = None

    def step(self, name: str, outcome: str, **detail: Any) -> None:
        self.steps.append({"step": name, "outcome": outcome, **detail})

    def stop(self, name: str, status: str, code: str, reason: str, **detail: Any) -> Evaluation:
        self.step(name, "refused" if status == ClaimStatus.REJECTED else "held", code=code, reason=reason, **detail)
        self.outcome, self.code, self.reason, self.amount_g = status, code, reason, 0
        return self


def _day_bounds(when: datetime) -> tuple[datetime, datetime]:
    local = timezone.localtime(when)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _month_bounds(when: datetime) -> tuple[datetime, datetime]:
    local = timezone.localtime(when)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (start + timedelta(days=32)).replace(day=1)
    return start, nxt


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


def window_problem(*, behaviour: Behaviour, occurred_at: datetime, reference: datetime) -> str | None:
    if occurred_at > reference + CLOCK_SKEW:
        return "The behaviour cannot have happened in the future."
    if occurred_at < reference - timedelta(days=behaviour.claim_window_days):
        return f"Claims for {behaviour.name} must be made within {behaviour.claim_window_days} days."
    return None


def evaluate(*, claim: Claim, tier: str, now: datetime | None = None) -> Evaluation:
    """Run every rule after verification. Reads only; the caller writes the outcome."""
    from carbon.services.people import consent_is_current

    now = now or timezone.now()
    ev = Evaluation()
    behaviour = claim.behaviour

    # 1. eligibility
    if tier in CONSENT_TIERS and behaviour.consent_scope:
        if not consent_is_current(user=claim.user, scope=behaviour.consent_scope, at=claim.occurred_at):
            return ev.stop(
                "eligibility", ClaimStatus.REJECTED, "no_consent",
                f"No consent for the data source '{behaviour.consent_scope}' when this happened.",
            )
    problem = window_problem(behaviour=behaviour, occurred_at=claim.occurred_at, reference=claim.submitted_at)
    if problem:
        return ev.stop("eligibility", ClaimStatus.REJECTED, "outside_claim_window", problem)
    ev.step("eligibility", "passed", claim_window_days=behaviour.claim_window_days)

    # 2. quantity
    if claim.quantity <= 0 or claim.quantity > behaviour.max_quantity:
        return ev.stop(
            "quantity", ClaimStatus.REJECTED, "invalid_quantity",
            f"Quantity must be above 0 and at most {behaviour.max_quantity} {behaviour.unit}.",
        )
    ev.step("quantity", "passed", quantity=str(claim.quantity), unit=behaviour.unit)

    # 3. factor
    factor = EmissionFactor.objects.for_claim(
        behaviour=behaviour, when=claim.occurred_at, district=claim.user.district
    )
    if factor is None:
        return ev.stop(
            "factor", ClaimStatus.NEEDS_REVIEW, "no_factor",
            "No emission factor is in force for this behaviour and date; an administrator will review it.",
        )
    ev.factor = factor
    gross = factor.grams_for(claim.quantity)
    ev.step(
        "factor", "applied", factor_id=factor.pk, version=factor.version,
        grams_per_unit=str(factor.grams_per_unit), unit=factor.unit,
        methodology=factor.methodology, source=factor.source, gross_g=gross,
    )

    # 4. evidence-tier weight
    weight_bp = settings.CARBON_TIER_WEIGHTS_BP.get(tier, 0)
    amount = gross * weight_bp // 10000
    ev.step("tier_weight", "applied", tier=tier, weight_percent=weight_bp / 100, amount_g=amount)

    # 5. per-action cap
    if behaviour.per_action_cap_g is not None and amount > behaviour.per_action_cap_g:
        ev.step("per_action_cap", "cut", cap_g=behaviour.per_action_cap_g, cut_g=amount - behaviour.per_action_cap_g)
        amount = behaviour.per_action_cap_g
    else:
        ev.step("per_action_cap", "passed", cap_g=behaviour.per_action_cap_g)

    # 6. daily / monthly caps
    for name, cap, bounds in (
        ("daily_cap", behaviour.daily_cap_g, _day_bounds),
        ("monthly_cap", behaviour.monthly_cap_g, _month_bounds),
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
        ev.outcome, ev.code = ClaimStatus.REJECTED, "cap_reached"
        ev.reason = "The cap for this behaviour is already reached; nothing more can be credited."
        ev.steps[-1]["code"] = "cap_reached"
        return ev

    # 7. throttle
    window = timedelta(minutes=settings.CARBON_THROTTLE_WINDOW_MINUTES)
    recent = (
        Claim.objects.filter(user_id=claim.user_id, submitted_at__gte=now - window)
        .exclude(pk=claim.pk)
        .count()
    )
    if recent >= settings.CARBON_THROTTLE_ACTIONS:
        return ev.stop(
            "throttle", ClaimStatus.REJECTED, "throttled",
            f"More than {settings.CARBON_THROTTLE_ACTIONS} claims in "
            f"{settings.CARBON_THROTTLE_WINDOW_MINUTES} minutes; please slow down.",
            recent_claims=recent,
        )
    ev.step("throttle", "passed", recent_claims=recent)

    ev.amount_g = amount
    return ev
