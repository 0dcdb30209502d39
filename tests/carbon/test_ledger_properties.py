"""Property-based test of the ledger: random sequences of awards, spends, holds, posts, voids,
expiries (time moves forward through `now=`), reversals and retries across three residents.

After every step `ledger_check()` must find nothing, and every resident's balance, pending
grams and every lot must match a small Python model of the rules:

* spends and holds take lots oldest expiry first (ties by lot id), only from the allowed
  categories, and fail with nothing written when the allowed lots hold too little;
* a void gives the held grams back to the lots they came from (even expired ones);
* the expiry jobs first void holds past their timeout, then move what is left of lots past
  their date to the expiry account;
* a reversal takes what is left of the award's lot;
* re-sending an idempotency key with the same payload changes nothing, with another payload
  is refused.

Each example runs in its own savepoint, rolled back in teardown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from carbon.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    NothingToReverse,
    PendingAlreadyResolved,
)
from carbon.models import Account, AccountKind, Lot, Transfer
from carbon.services.ledger import (
    ledger_award,
    ledger_expire_lots,
    ledger_expire_pending,
    ledger_hold,
    ledger_post,
    ledger_reverse,
    ledger_spend,
    ledger_void,
    system_account_cache_clear,
)
from carbon.services.ledger_check import ledger_check
from tests.carbon.api_helpers import new_key
from tests.carbon.factories import UserFactory

CATEGORIES = ["green_travel", "waste"]
category_filters = st.sampled_from([None, ["green_travel"], ["waste"], ["green_travel", "waste"]])


@dataclass
class ModelLot:
    user: int
    category: str
    expires_at: datetime
    remaining: int


@dataclass
class ModelHold:
    user: int
    amount: int
    timeout_at: datetime
    taken: dict[int, int]  # lot id -> grams
    state: str = "open"  # open | posted | voided
    resolution: int | None = None


@dataclass
class Sent:
    """A request that succeeded, kept to be re-sent."""

    op: str
    kwargs: dict = field(default_factory=dict)
    transfer_id: int = 0


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, users):
        super().__init__()
        self.users = users
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        system_account_cache_clear()
        self.clock = timezone.now()
        self.lots: dict[int, ModelLot] = {}  # by lot id
        self.lot_of_award: dict[int, int] = {}
        self.holds: dict[int, ModelHold] = {}  # by pending transfer id
        self.available = {u.pk: 0 for u in users}  # a running total, kept apart from the lots
        self.sent: list[Sent] = []
        self.awards: list[int] = []

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)
        system_account_cache_clear()

    # --- the model's rules ---------------------------------------------------------------

    def _take(self, user_pk: int, amount: int, categories) -> dict[int, int] | None:
        allowed = sorted(
            (
                (lot.expires_at, lot_id)
                for lot_id, lot in self.lots.items()
                if lot.user == user_pk
                and lot.remaining > 0
                and (not categories or lot.category in categories)
            ),
        )
        if sum(self.lots[lot_id].remaining for _, lot_id in allowed) < amount:
            return None
        taken, left = {}, amount
        for _, lot_id in allowed:
            take = min(left, self.lots[lot_id].remaining)
            taken[lot_id] = take
            left -= take
            if not left:
                break
        return taken

    def _apply_take(self, taken: dict[int, int]) -> None:
        for lot_id, grams in taken.items():
            self.lots[lot_id].remaining -= grams

    def _void_in_model(self, pending_id: int, resolution_id: int) -> None:
        h = self.holds[pending_id]
        for lot_id, grams in h.taken.items():
            self.lots[lot_id].remaining += grams
        self.available[h.user] += h.amount
        h.state, h.resolution = "voided", resolution_id

    # --- operations ------------------------------------------------------------------------

    @rule(
        who=st.integers(0, 2),
        amount=st.integers(1, 200),
        category=st.sampled_from(CATEGORIES),
        days=st.integers(1, 40),
    )
    def award(self, who, amount, category, days):
        user = self.users[who]
        kwargs = dict(
            user=user,
            amount_g=amount,
            category=category,
            idempotency_key=new_key(),
            description="award",
            expires_at=self.clock + timedelta(days=days),
        )
        t = ledger_award(**kwargs)
        lot = Lot.objects.get(award=t)
        assert lot.amount_g == lot.remaining_g == amount
        self.lots[lot.pk] = ModelLot(user.pk, category, kwargs["expires_at"], amount)
        self.lot_of_award[t.pk] = lot.pk
        self.available[user.pk] += amount
        self.awards.append(t.pk)
        self.sent.append(Sent("award", kwargs, t.pk))

    def _debit(self, op, who, amount, categories, hours=None):
        user = self.users[who]
        kwargs = dict(
            user=user,
            amount_g=amount,
            idempotency_key=new_key(),
            description=op,
            categories=categories,
        )
        if op == "hold":
            # timeout_at lands `hours` after the model's clock, whatever the real time.
            kwargs["timeout"] = (self.clock - timezone.now()) + timedelta(hours=hours)
        taken = self._take(user.pk, amount, categories)
        before = Transfer.objects.count()
        call = ledger_hold if op == "hold" else ledger_spend
        if taken is None:
            try:
                call(**kwargs)
            except InsufficientFunds:
                assert Transfer.objects.count() == before
                return
            raise AssertionError(f"{op} of {amount} g should have been refused")
        t = call(**kwargs)
        self._apply_take(taken)
        self.available[user.pk] -= amount
        got = {a.lot_id: a.amount_g for a in t.allocations.all()}
        assert got == taken, (got, taken)
        if op == "hold":
            self.holds[t.pk] = ModelHold(user.pk, amount, t.timeout_at, taken)
        self.sent.append(Sent(op, kwargs, t.pk))

    @rule(who=st.integers(0, 2), amount=st.integers(1, 300), categories=category_filters)
    def spend(self, who, amount, categories):
        self._debit("spend", who, amount, categories)

    @rule(
        who=st.integers(0, 2),
        amount=st.integers(1, 300),
        categories=category_filters,
        hours=st.integers(1, 24 * 20),
    )
    def hold(self, who, amount, categories, hours):
        self._debit("hold", who, amount, categories, hours)

    @precondition(lambda self: self.holds)
    @rule(i=st.integers(0, 10_000))
    def post(self, i):
        pending_id = sorted(self.holds)[i % len(self.holds)]
        h = self.holds[pending_id]
        if h.state == "voided":
            try:
                ledger_post(pending_id=pending_id)
            except PendingAlreadyResolved:
                return
            raise AssertionError("posted a voided hold")
        r = ledger_post(pending_id=pending_id)
        if h.state == "posted":
            assert r.pk == h.resolution
        h.state, h.resolution = "posted", r.pk

    @precondition(lambda self: self.holds)
    @rule(i=st.integers(0, 10_000))
    def void(self, i):
        pending_id = sorted(self.holds)[i % len(self.holds)]
        h = self.holds[pending_id]
        if h.state == "posted":
            try:
                ledger_void(pending_id=pending_id)
            except PendingAlreadyResolved:
                return
            raise AssertionError("voided a posted hold")
        r = ledger_void(pending_id=pending_id)
        if h.state == "voided":
            assert r.pk == h.resolution
            return
        self._void_in_model(pending_id, r.pk)

    @rule(hours=st.integers(1, 24 * 30))
    def time_passes(self, hours):
        self.clock += timedelta(hours=hours)
        due = [
            pk
            for pk, h in sorted(self.holds.items())
            if h.state == "open" and h.timeout_at <= self.clock
        ]
        assert ledger_expire_pending(now=self.clock) == len(due)
        for pk in due:
            self._void_in_model(pk, Transfer.objects.get(pending_id=pk).pk)
        expired = 0
        for lot in self.lots.values():
            if lot.expires_at <= self.clock and lot.remaining:
                expired += lot.remaining
                self.available[lot.user] -= lot.remaining
                lot.remaining = 0
        assert ledger_expire_lots(now=self.clock) == expired

    @precondition(lambda self: self.awards)
    @rule(i=st.integers(0, 10_000))
    def reverse(self, i):
        award_id = self.awards[i % len(self.awards)]
        lot = self.lots[self.lot_of_award[award_id]]
        if lot.remaining == 0:
            try:
                ledger_reverse(transfer_id=award_id, reason="test", actor=None)
            except NothingToReverse:
                return
            raise AssertionError("reversed an award with nothing left")
        r = ledger_reverse(transfer_id=award_id, reason="test", actor=None)
        assert r.amount_g == lot.remaining
        self.available[lot.user] -= lot.remaining
        lot.remaining = 0

    @precondition(lambda self: self.sent)
    @rule(i=st.integers(0, 10_000))
    def retry(self, i):
        sent = self.sent[i % len(self.sent)]
        call = {"award": ledger_award, "spend": ledger_spend, "hold": ledger_hold}[sent.op]
        before = Transfer.objects.count()
        assert call(**sent.kwargs).pk == sent.transfer_id
        assert Transfer.objects.count() == before

    @precondition(lambda self: self.sent)
    @rule(i=st.integers(0, 10_000), extra=st.integers(1, 50))
    def retry_with_another_payload(self, i, extra):
        sent = self.sent[i % len(self.sent)]
        call = {"award": ledger_award, "spend": ledger_spend, "hold": ledger_hold}[sent.op]
        before = Transfer.objects.count()
        with pytest.raises(IdempotencyConflict):
            call(**{**sent.kwargs, "amount_g": sent.kwargs["amount_g"] + extra})
        assert Transfer.objects.count() == before

    # --- what must hold after every step ----------------------------------------------------

    @invariant()
    def ledger_is_consistent(self):
        assert ledger_check(now=self.clock) == []

    @invariant()
    def balances_match_the_model(self):
        accounts = {a.user_id: a for a in Account.objects.filter(kind=AccountKind.RESIDENT)}
        for user in self.users:
            acc = accounts.get(user.pk)
            available = acc.available_g if acc else 0
            pending = acc.debits_pending if acc else 0
            assert available == self.available[user.pk], user.pk
            assert available == sum(
                lot.remaining for lot in self.lots.values() if lot.user == user.pk
            )
            assert pending == sum(
                h.amount for h in self.holds.values() if h.user == user.pk and h.state == "open"
            )
        remaining = dict(Lot.objects.values_list("pk", "remaining_g"))
        assert remaining == {pk: lot.remaining for pk, lot in self.lots.items()}


@pytest.mark.django_db
def test_random_ledger_histories_keep_every_invariant(settings_override):
    users = UserFactory.create_batch(3)
    # The rules are the same on both databases; PostgreSQL's round trips make each step
    # several times dearer, so its CI pass runs fewer histories.
    examples = 50 if connection.vendor == "sqlite" else 25
    run_state_machine_as_test(
        lambda: LedgerMachine(users),
        settings=settings(
            max_examples=examples,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.fixture
def settings_override(settings):
    settings.LEDGER_SYSTEM_SHARDS = 3  # several shards of each system account, not sixteen
    return settings
