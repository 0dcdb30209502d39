"""Feed claims decided in bulk: the common case of a partner feed's batch (a card's trips, a
partner's events) credited set-based, with the rows and receipts `claim_submit_from_feed`
writes one claim at a time.

One statement per rule input for the whole batch (the residents' locks, claims already
made under the same keys, consents, same-act candidates, daily sums by resident, behaviour
and local day; the behaviours and their factors come from the cached catalogue, one version
for the batch, as claim_submit takes one for each claim), then bulk writes: the claims, and the awards through
ledger_bulk.ledger_award_many. What the bulk path does not decide is left to the caller's
per-claim path, unchanged: a refusal or hold of any kind (no consent, a cap reached, below
one gram, no factor, a closed account, a verdict other than verified), a monthly cap, a
credited claim of other evidence within the same-act window, a claim already made under
the key. Once one of a resident's items is left (but for a claim already made: it changes
nothing), so are that resident's later items: the
per-claim path then decides them in the same order as it would have, after what it depends
on (a same-act cut or a monthly cap changes what the later items may earn).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from carbon.errors import DomainError
from carbon.models import (
    Behaviour,
    Claim,
    ClaimStatus,
    Consent,
    Partner,
    User,
)
from carbon.services.catalogue import (
    CatalogueSnapshot,
    behaviour_active,
    catalogue_snapshot,
    factor_for_claim,
)
from carbon.services.claims import (
    claim_award_terms,
    claim_receipt,
    claim_request_hash,
    parsed_quantity,
)
from carbon.services.ledger_bulk import AwardSpec, ledger_award_many
from carbon.services.rows_bulk import rows_insert
from carbon.services.rules import (
    CONSENT_TIERS,
    Evaluation,
    eligibility_step,
    factor_step,
    per_action_cap_step,
    period_cap_step,
    quantity_step,
    throttle_step,
    tier_weight_step,
    window_problem,
)
from carbon.verifiers import PreparedEvidence, Verdict, get_verifier


@dataclass
class FeedClaim:
    """One claim a feed makes on a resident's behalf: the arguments of
    claim_submit_from_feed, plus what the adapter's `prepare` would hand to `verify`.
    `evidence` is both what was sent and what is kept (feed adapters keep it as is)."""

    user: User
    behaviour_code: str
    quantity: Any
    occurred_at: datetime
    evidence: dict[str, Any]
    payload: Any
    partner: Partner
    idempotency_key: str


@dataclass
class _Decided:
    item: FeedClaim
    claim: Claim
    verdict: Verdict
    tier: str
    steps: list[dict[str, Any]]
    amount_g: int


def _local_day(when: datetime) -> date:
    return timezone.localtime(when).date()


def claims_credit_feed_many(
    *, items: Sequence[FeedClaim], evidence_type: str, now: datetime
) -> list[Claim | None]:
    """Credit what can be credited of `items` (in the order a per-claim run would decide
    them) and return, item by item, the claim written or None for an item left to the
    per-claim path. Call inside transaction.atomic(): the residents stay locked until it
    ends. All or nothing: IntegrityError (a concurrent run wrote one of the keys first)
    leaves nothing written, and the caller takes every item one at a time."""
    verifier = get_verifier(evidence_type)
    results: list[Claim | None] = [None] * len(items)
    if not items or verifier is None or verifier.accepts_from_resident:
        return results
    tier = verifier.tier
    # One catalogue version for the whole batch (the behaviours and their factors), as
    # claim_submit takes one for each claim: the cached snapshot, no statement once loaded.
    catalogue = catalogue_snapshot()
    behaviours = {
        code: behaviour
        for code in {item.behaviour_code for item in items}
        if (behaviour := behaviour_active(code=code, catalogue=catalogue)) is not None
    }

    # What claim_submit refuses or routes elsewhere before any rule: left to it. By resident,
    # the index of their first item left: that item and their later ones go one at a time;
    # their earlier ones are still decided here (an index, not a set of residents: a later
    # item left must not take back the earlier ones).
    left: dict[int, int] = {}
    candidates: list[tuple[int, FeedClaim, Behaviour, Decimal]] = []
    for index, item in enumerate(items):
        behaviour = behaviours.get(item.behaviour_code)
        if (
            item.user.pk in left
            or behaviour is None
            or evidence_type not in behaviour.evidence_types
            or behaviour.monthly_cap_g is not None
            or tier == "self"
            or item.partner is None
            or not getattr(item.user, "is_resident", False)
            or timezone.is_naive(item.occurred_at)
            or window_problem(behaviour=behaviour, occurred_at=item.occurred_at, reference=now)
        ):
            left.setdefault(item.user.pk, index)
            continue
        try:
            q = parsed_quantity(value=item.quantity, behaviour=behaviour)
        except DomainError:
            left.setdefault(item.user.pk, index)
            continue
        candidates.append((index, item, behaviour, q))
    if not candidates:
        return results

    user_ids = sorted({item.user.pk for _, item, _, _ in candidates})
    # The residents' rows, locked in id order (people.resident_lock, for a batch): claims and
    # erasures of these residents wait, and two batches never wait on each other in a cycle.
    locked = {
        u.pk: u
        for u in User.objects.select_for_update(no_key=True)
        .filter(pk__in=user_ids)
        .order_by("pk")
        .only("id", "is_active", "erased_at", "district_id", "role")
    }
    keys = [item.idempotency_key for _, item, _, _ in candidates]
    taken = set(
        Claim.objects.filter(user_id__in=user_ids, idempotency_key__in=keys).values_list(
            "user_id", "idempotency_key"
        )
    )
    scopes = sorted({b.consent_scope for _, _, b, _ in candidates if b.consent_scope})
    consented = (
        set(
            Consent.objects.current()
            .filter(user_id__in=user_ids, scope__in=scopes)
            .values_list("user_id", "scope")
        )
        if scopes and tier in CONSENT_TIERS
        else set()
    )
    behaviour_ids = sorted({b.pk for _, _, b, _ in candidates})
    window = timedelta(minutes=settings.CARBON_SAME_ACT_MINUTES)
    first = min(item.occurred_at for _, item, _, _ in candidates)
    last = max(item.occurred_at for _, item, _, _ in candidates)
    credited = Claim.objects.filter(
        user_id__in=user_ids, behaviour_id__in=behaviour_ids, status=ClaimStatus.CREDITED
    )
    same_act: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    for user_id, behaviour_id, occurred in (
        credited.filter(occurred_at__gte=first - window, occurred_at__lte=last + window)
        .exclude(evidence_type=evidence_type)
        .values_list("user_id", "behaviour_id", "occurred_at")
    ):
        same_act[(user_id, behaviour_id)].append(occurred)
    capped = sorted({b.pk for _, _, b, _ in candidates if b.daily_cap_g is not None})
    used: dict[tuple[int, int, date], int] = defaultdict(int)
    if capped:
        day_from = timezone.localtime(first).replace(hour=0, minute=0, second=0, microsecond=0)
        day_to = timezone.localtime(last).replace(
            hour=0, minute=0, second=0, microsecond=0
        ) + timedelta(days=1)
        for row in (
            credited.filter(
                behaviour_id__in=capped, occurred_at__gte=day_from, occurred_at__lt=day_to
            )
            .annotate(day=TruncDate("occurred_at"))
            .values("user_id", "behaviour_id", "day")
            .annotate(s=Sum("credited_g"))
            .order_by()
        ):
            used[(row["user_id"], row["behaviour_id"], row["day"])] = row["s"] or 0

    weight_bp = settings.CARBON_TIER_WEIGHTS_BP.get(tier, 0)
    decided: list[tuple[int, _Decided]] = []
    for index, item, behaviour, q in candidates:
        if (item.user.pk, item.idempotency_key) in taken:
            # Made already (by a concurrent batch of the same cards, which held the lock
            # first): left to the per-claim path, which answers with that claim and writes
            # nothing, so it decides nothing the resident's later items depend on. They stay
            # here: every rule input was read after the lock, that claim included.
            continue
        user = locked.get(item.user.pk)
        decision = None
        before_left = index < left.get(item.user.pk, len(items))
        if before_left and user is not None and user.is_active and not user.erased_at:
            decision = _decide(
                item=item,
                user=user,
                behaviour=behaviour,
                q=q,
                tier=tier,
                verifier=verifier,
                evidence_type=evidence_type,
                consented=consented,
                same_act=same_act.get((user.pk, behaviour.pk), []),
                window=window,
                used=used,
                catalogue=catalogue,
                weight_bp=weight_bp,
                now=now,
            )
        if decision is None:
            # Candidates come in index order: this one is before any the first loop left.
            left[item.user.pk] = min(index, left.get(item.user.pk, index))
            continue
        decided.append((index, decision))
    if not decided:
        return results

    transfers = ledger_award_many(
        awards=[
            AwardSpec(
                user=d.item.user,
                **claim_award_terms(claim=d.claim, amount_g=d.amount_g, now=now),
            )
            for _, d in decided
        ]
    )
    claims = []
    for (index, d), award in zip(decided, transfers, strict=True):
        steps = [
            *d.steps,
            {
                "step": "credit",
                "outcome": "credited",
                "amount_g": award.amount_g,
                "transfer_id": award.pk,
                "expires_at": award.lot.expires_at.isoformat(),
            },
        ]
        claim = d.claim
        claim.award = award
        claim.status = ClaimStatus.CREDITED
        claim.credited_g = award.amount_g
        claim.receipt = claim_receipt(
            verdict=d.verdict,
            tier=d.tier,
            evaluation=Evaluation(steps=steps),
            status=claim.status,
            credited_g=claim.credited_g,
            code="credited",
            reason=f"{award.amount_g} g credited.",
        )
        claim.decided_at = now
        claims.append(claim)
        results[index] = claim
    rows_insert(objs=claims)
    return results


def _decide(
    *,
    item: FeedClaim,
    user: User,
    behaviour: Behaviour,
    q: Decimal,
    tier: str,
    verifier: Any,
    evidence_type: str,
    consented: set[tuple[int, str]],
    same_act: list[datetime],
    window: timedelta,
    used: dict[tuple[int, int, date], int],
    catalogue: CatalogueSnapshot,
    weight_bp: int,
    now: datetime,
) -> _Decided | None:
    """The steps of rules.evaluate for one feed claim (the same step functions, so the same
    receipt), from inputs read for the batch. None: anything but a credit, left to the
    per-claim path."""
    if behaviour.monthly_cap_g is not None:
        return None  # the caller leaves these: no month's sum is read for the batch
    if any(abs(other - item.occurred_at) <= window for other in same_act):
        return None  # the same act by other evidence: the per-claim path cuts or refuses it
    eligibility = eligibility_step(
        behaviour=behaviour,
        tier=tier,
        consent=(user.pk, behaviour.consent_scope) in consented,
        # The caller left every item outside the claim window to the per-claim path.
        problem=None,
        stronger=None,
    )
    if eligibility.status:
        return None
    claim = Claim(
        id=uuid.uuid4(),
        user=item.user,
        behaviour=behaviour,
        quantity=q,
        occurred_at=item.occurred_at,
        evidence_type=evidence_type,
        evidence=item.evidence,
        partner=item.partner,
        idempotency_key=item.idempotency_key,
        request_hash=claim_request_hash(
            behaviour_code=item.behaviour_code,
            quantity=item.quantity,
            occurred_at=item.occurred_at,
            evidence_type=evidence_type,
            evidence=item.evidence,
            partner=item.partner,
        ),
        submitted_at=now,
    )
    verdict = verifier.verify(
        claim=claim, prepared=PreparedEvidence(evidence=item.evidence, payload=item.payload)
    )
    if verdict.outcome != "verified":
        return None
    factor = factor_for_claim(
        behaviour=behaviour,
        when=item.occurred_at,
        district_id=user.district_id,
        catalogue=catalogue,
    )
    quantity = quantity_step(behaviour=behaviour, quantity=q)
    factored = factor_step(factor=factor, quantity=q)
    if quantity.status or factored.status:
        return None  # no factor (a review): written by the per-claim path
    weighted = tier_weight_step(tier=tier, weight_bp=weight_bp, amount_g=factored.amount_g)
    per_action = per_action_cap_step(cap_g=behaviour.per_action_cap_g, amount_g=weighted.amount_g)
    day = (user.pk, behaviour.pk, _local_day(item.occurred_at))
    daily = period_cap_step(
        name="daily_cap",
        cap_g=behaviour.daily_cap_g,
        credited_g=used[day],
        amount_g=per_action.amount_g,
    )
    monthly = period_cap_step(
        name="monthly_cap", cap_g=None, credited_g=None, amount_g=daily.amount_g
    )
    amount = monthly.amount_g
    if amount <= 0:
        return None  # cap_reached or below_one_gram: a refusal, written by the per-claim path
    throttle = throttle_step(
        skip_throttle=False, partner_feed=True, held_until=None, amount_g=amount
    )
    used[day] += amount
    claim.factor = factor
    return _Decided(
        item=item,
        claim=claim,
        verdict=verdict,
        tier=tier,
        steps=[
            r.step
            for r in (
                eligibility,
                quantity,
                factored,
                weighted,
                per_action,
                daily,
                monthly,
                throttle,
            )
        ],
        amount_g=amount,
    )
