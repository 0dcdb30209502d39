"""Service-level tests of the points ledger: idempotency, two-phase holds, lots and expiry,
reversals, and the database backstops. Every flow ends with `manage.py ledger_check`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from carbon.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    NothingToReverse,
    NotPending,
    PendingAlreadyResolved,
)
from carbon.models import (
    Account,
    AccountKind,
    Lot,
    LotAllocation,
    Transfer,
    TransferCode,
    TransferFlag,
)
from carbon.services.ledger import (
    account_for_user,
    ledger_award,
    ledger_expire_lots,
    ledger_expire_pending,
    ledger_hold,
    ledger_post,
    ledger_reverse,
    ledger_spend,
    ledger_void,
    system_account,
)
from carbon.services.ledger_check import ledger_check
from tests.carbon.api_helpers import new_key
from tests.carbon.factories import UserFactory

pytestmark = pytest.mark.django_db


def award(user, amount_g, *, category="green_travel", days=30, idempotency_key=None, **kw):
    return ledger_award(
        user=user,
        amount_g=amount_g,
        category=category,
        idempotency_key=idempotency_key or new_key(),
        description="test award",
        expires_at=kw.pop("expires_at", None) or timezone.now() + timedelta(days=days),
        **kw,
    )


def spend(user, amount_g, *, idempotency_key=None, **kw):
    return ledger_spend(
        user=user,
        amount_g=amount_g,
        idempotency_key=idempotency_key or new_key(),
        description="test spend",
        **kw,
    )


def hold(user, amount_g, *, idempotency_key=None, **kw):
    return ledger_hold(
        user=user,
        amount_g=amount_g,
        idempotency_key=idempotency_key or new_key(),
        description="test hold",
        **kw,
    )


def account(user) -> Account:
    return Account.objects.get(user=user)


def kind_total(kind: str, counter: str) -> int:
    return Account.objects.filter(kind=kind).aggregate(s=Sum(counter))["s"] or 0


def counts() -> dict[str, int]:
    return {
        "accounts": Account.objects.count(),
        "transfers": Transfer.objects.count(),
        "lots": Lot.objects.count(),
        "allocations": LotAllocation.objects.count(),
        "lot_remaining": Lot.objects.aggregate(s=Sum("remaining_g"))["s"] or 0,
    }


# --- awards ---------------------------------------------------------------------------------


def test_award_credits_the_resident_from_issuance_as_a_lot(resident, ledger_is_consistent):
    expires = timezone.now() + timedelta(days=90)
    t = award(resident, 500, category="waste", expires_at=expires, reference="claim:1")

    assert (t.flag, t.code, t.amount_g, t.category) == ("posted", "award", 500, "waste")
    acc = account(resident)
    assert t.credit_account_id == acc.pk
    assert t.debit_account.kind == AccountKind.ISSUANCE
    assert (acc.credits_posted, acc.debits_posted, acc.available_g) == (500, 0, 500)
    assert kind_total(AccountKind.ISSUANCE, "debits_posted") == 500
    lot = Lot.objects.get(award=t)
    assert (lot.account_id, lot.amount_g, lot.remaining_g, lot.category) == (
        acc.pk,
        500,
        500,
        "waste",
    )
    assert lot.expires_at == expires
    ledger_is_consistent()


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "10", None])
def test_award_refuses_amounts_that_are_not_positive_whole_grams(resident, bad):
    with pytest.raises(InvalidAmount):
        award(resident, bad)
    assert Transfer.objects.count() == 0


def test_award_same_key_same_payload_returns_the_original(resident, ledger_is_consistent):
    k = new_key()
    first = award(resident, 250, idempotency_key=k, reference="claim:7")
    again = award(resident, 250, idempotency_key=k, reference="claim:7")

    assert again.pk == first.pk
    assert Transfer.objects.count() == 1
    assert Lot.objects.count() == 1
    assert account(resident).available_g == 250
    ledger_is_consistent()


@pytest.mark.parametrize(
    "change",
    [
        {"amount_g": 251},
        {"category": "waste"},
        {"reference": "claim:8"},
        {"user": "other"},
    ],
)
def test_award_same_key_different_payload_is_refused(
    resident, other_resident, change, ledger_is_consistent
):
    k = new_key()
    award(resident, 250, idempotency_key=k, reference="claim:7")
    args = {"amount_g": 250, "category": "green_travel", "reference": "claim:7", "user": resident}
    args.update(change)
    if args["user"] == "other":
        args["user"] = other_resident
    user = args.pop("user")
    amount = args.pop("amount_g")

    with pytest.raises(IdempotencyConflict):
        award(user, amount, idempotency_key=k, **args)

    assert Transfer.objects.count() == 1
    assert account(resident).available_g == 250
    assert not Account.objects.filter(user=other_resident, credits_posted__gt=0).exists()
    ledger_is_consistent()


# --- spends -----------------------------------------------------------------------------------


def test_spend_moves_grams_to_redemption_and_is_idempotent(resident, ledger_is_consistent):
    award(resident, 100)
    k = new_key()
    first = spend(resident, 40, idempotency_key=k, reference="order:1")
    again = spend(resident, 40, idempotency_key=k, reference="order:1")

    assert again.pk == first.pk
    assert (first.flag, first.code) == ("posted", "spend")
    assert first.credit_account.kind == AccountKind.REDEMPTION
    acc = account(resident)
    assert (acc.debits_posted, acc.available_g) == (40, 60)
    assert kind_total(AccountKind.REDEMPTION, "credits_posted") == 40
    assert Transfer.objects.filter(code=TransferCode.SPEND).count() == 1
    ledger_is_consistent()


@pytest.mark.parametrize(
    "change",
    [
        {"amount_g": 41},
        {"categories": ["green_travel"]},
        {"reference": "order:2"},
        {"to_kind": AccountKind.OFFSET},
    ],
)
def test_spend_same_key_different_payload_is_refused(resident, change, ledger_is_consistent):
    award(resident, 100)
    k = new_key()
    spend(resident, 40, idempotency_key=k, reference="order:1")
    args = {"amount_g": 40, "reference": "order:1", **change}
    amount = args.pop("amount_g")

    with pytest.raises(IdempotencyConflict):
        spend(resident, amount, idempotency_key=k, **args)

    assert account(resident).available_g == 60
    assert Transfer.objects.filter(code=TransferCode.SPEND).count() == 1
    ledger_is_consistent()


def test_a_key_used_for_one_operation_is_refused_for_another(resident, ledger_is_consistent):
    k = new_key()
    award(resident, 100, idempotency_key=k)
    with pytest.raises(IdempotencyConflict):
        spend(resident, 100, idempotency_key=k)
    k2 = new_key()
    spend(resident, 10, idempotency_key=k2)
    with pytest.raises(IdempotencyConflict):
        hold(resident, 10, idempotency_key=k2)
    assert account(resident).available_g == 90
    ledger_is_consistent()


@pytest.mark.parametrize("operation", ["spend", "hold"])
def test_insufficient_funds_raises_and_writes_nothing(resident, operation, ledger_is_consistent):
    award(resident, 70, category="green_travel", days=10)
    award(resident, 30, category="waste", days=20)
    before = counts()
    acc_before = Account.objects.get(user=resident)
    do = spend if operation == "spend" else hold

    with pytest.raises(InsufficientFunds):
        do(resident, 101)
    with pytest.raises(InsufficientFunds):
        do(resident, 71, categories=["green_travel"])

    assert counts() == before
    acc = account(resident)
    assert (acc.debits_posted, acc.debits_pending, acc.credits_posted) == (
        acc_before.debits_posted,
        acc_before.debits_pending,
        acc_before.credits_posted,
    )
    # The whole balance is still there to be spent.
    do(resident, 100)
    assert account(resident).available_g == 0
    ledger_is_consistent()


def test_a_resident_without_an_account_cannot_spend_and_nothing_is_created(resident):
    before = counts()
    with pytest.raises(InsufficientFunds):
        spend(resident, 1)
    assert counts() == before


def test_spends_consume_lots_oldest_expiry_first(resident, ledger_is_consistent):
    late = award(resident, 100, days=300)
    early = award(resident, 50, days=10)
    middle = award(resident, 80, days=100)

    first = spend(resident, 70)
    assert Lot.objects.get(award=early).remaining_g == 0
    assert Lot.objects.get(award=middle).remaining_g == 60
    assert Lot.objects.get(award=late).remaining_g == 100
    taken = {a.lot.award_id: a.amount_g for a in LotAllocation.objects.filter(transfer=first)}
    assert taken == {early.pk: 50, middle.pk: 20}

    hold(resident, 100)
    assert Lot.objects.get(award=middle).remaining_g == 0
    assert Lot.objects.get(award=late).remaining_g == 60
    assert account(resident).available_g == 60
    ledger_is_consistent()


def test_category_restricted_spend_only_consumes_those_lots(resident, ledger_is_consistent):
    waste = award(resident, 200, category="waste", days=5)  # oldest, but not allowed
    travel_late = award(resident, 100, category="green_travel", days=60)
    travel_early = award(resident, 40, category="green_travel", days=30)

    offset = spend(resident, 80, categories=["green_travel"], to_kind=AccountKind.OFFSET)

    assert offset.credit_account.kind == AccountKind.OFFSET
    assert Lot.objects.get(award=waste).remaining_g == 200
    assert Lot.objects.get(award=travel_early).remaining_g == 0
    assert Lot.objects.get(award=travel_late).remaining_g == 60
    assert account(resident).available_g == 260
    # 260 g available, but only 60 g of green travel.
    with pytest.raises(InsufficientFunds):
        spend(resident, 61, categories=["green_travel"])
    hold(resident, 60, categories=["green_travel", "energy"])
    assert Lot.objects.get(award=travel_late).remaining_g == 0
    ledger_is_consistent()


# --- holds ----------------------------------------------------------------------------------


def test_hold_reserves_grams_and_post_resolves_exactly_once(resident, ledger_is_consistent):
    award(resident, 100)
    h = hold(resident, 60, reference="order:9")
    acc = account(resident)
    assert (h.flag, h.code) == ("pending", "hold")
    assert h.timeout_at is not None and h.timeout_at > timezone.now()
    assert (acc.debits_pending, acc.debits_posted, acc.available_g, acc.balance_g) == (
        60,
        0,
        40,
        100,
    )
    assert kind_total(AccountKind.REDEMPTION, "credits_pending") == 60
    ledger_is_consistent()

    posted = ledger_post(pending_id=h.pk)
    again = ledger_post(pending_id=h.pk)

    assert again.pk == posted.pk
    assert (posted.flag, posted.pending_id, posted.amount_g) == ("post_pending", h.pk, 60)
    acc = account(resident)
    assert (acc.debits_pending, acc.debits_posted, acc.available_g) == (0, 60, 40)
    assert kind_total(AccountKind.REDEMPTION, "credits_pending") == 0
    assert kind_total(AccountKind.REDEMPTION, "credits_posted") == 60
    with pytest.raises(PendingAlreadyResolved):
        ledger_void(pending_id=h.pk)
    assert Transfer.objects.filter(pending=h).count() == 1
    assert account(resident).available_g == 40
    ledger_is_consistent()


def test_void_gives_grams_back_to_their_lots_exactly_once(resident, ledger_is_consistent):
    a = award(resident, 50, days=10)
    b = award(resident, 50, days=20)
    h = hold(resident, 70)
    assert (Lot.objects.get(award=a).remaining_g, Lot.objects.get(award=b).remaining_g) == (0, 30)

    voided = ledger_void(pending_id=h.pk)
    again = ledger_void(pending_id=h.pk)

    assert again.pk == voided.pk
    assert voided.flag == TransferFlag.VOID_PENDING
    assert (Lot.objects.get(award=a).remaining_g, Lot.objects.get(award=b).remaining_g) == (50, 50)
    assert sorted(
        LotAllocation.objects.filter(transfer=voided).values_list("amount_g", flat=True)
    ) == [-50, -20]
    acc = account(resident)
    assert (acc.debits_pending, acc.debits_posted, acc.available_g) == (0, 0, 100)
    with pytest.raises(PendingAlreadyResolved):
        ledger_post(pending_id=h.pk)
    assert account(resident).debits_posted == 0
    ledger_is_consistent()


def test_only_pending_transfers_can_be_resolved(resident, ledger_is_consistent):
    t = award(resident, 100)
    s = spend(resident, 10)
    h = hold(resident, 10)
    resolution = ledger_post(pending_id=h.pk)
    for transfer in (t, s, resolution):
        with pytest.raises(NotPending):
            ledger_post(pending_id=transfer.pk)
        with pytest.raises(NotPending):
            ledger_void(pending_id=transfer.pk)
    ledger_is_consistent()


def test_hold_same_key_returns_the_same_hold(resident, ledger_is_consistent):
    award(resident, 100)
    k = new_key()
    h1 = hold(resident, 30, idempotency_key=k)
    h2 = hold(resident, 30, idempotency_key=k)
    assert h1.pk == h2.pk
    assert account(resident).debits_pending == 30
    with pytest.raises(IdempotencyConflict):
        hold(resident, 31, idempotency_key=k)
    ledger_is_consistent()


def test_expire_pending_voids_only_holds_past_their_timeout(resident, ledger_is_consistent):
    award(resident, 300)
    short = hold(resident, 100, timeout=timedelta(hours=1))
    long = hold(resident, 100, timeout=timedelta(days=2))
    posted = hold(resident, 50, timeout=timedelta(minutes=30))
    ledger_post(pending_id=posted.pk)
    later = timezone.now() + timedelta(hours=2)
    # Before the job runs, the check sees the overdue hold.
    assert [v.invariant for v in ledger_check(now=later)] == ["pending_past_timeout"]

    assert ledger_expire_pending(now=later) == 1

    assert Transfer.objects.get(pending=short).flag == TransferFlag.VOID_PENDING
    assert not Transfer.objects.filter(pending=long).exists()
    assert Transfer.objects.get(pending=posted).flag == TransferFlag.POST_PENDING
    acc = account(resident)
    assert (acc.debits_pending, acc.debits_posted, acc.available_g) == (100, 50, 150)
    assert ledger_check(now=later) == []
    assert ledger_expire_pending(now=later) == 0
    assert ledger_expire_pending(now=later + timedelta(days=2)) == 1
    assert account(resident).available_g == 250
    ledger_is_consistent()


# --- lot expiry --------------------------------------------------------------------------------


def test_expiry_moves_what_is_left_to_the_expiry_account(
    resident, other_resident, ledger_is_consistent
):
    soon = award(resident, 100, days=5)
    later = award(resident, 50, days=40)
    other = award(other_resident, 20, days=3)
    spend(resident, 30)  # from the lot that expires first
    now = timezone.now()

    assert ledger_expire_lots(now=now + timedelta(days=1)) == 0
    assert ledger_expire_lots(now=now + timedelta(days=6)) == 70 + 20

    assert Lot.objects.get(award=soon).remaining_g == 0
    assert Lot.objects.get(award=later).remaining_g == 50
    assert Lot.objects.get(award=other).remaining_g == 0
    assert account(resident).available_g == 50
    assert account(other_resident).available_g == 0
    assert kind_total(AccountKind.EXPIRY, "credits_posted") == 90
    expiries = Transfer.objects.filter(code=TransferCode.EXPIRY)
    assert sorted(expiries.values_list("amount_g", flat=True)) == [20, 70]
    assert (
        LotAllocation.objects.get(transfer__code=TransferCode.EXPIRY, lot__award=soon).amount_g
        == 70
    )
    # Running the job again finds nothing more.
    assert ledger_expire_lots(now=now + timedelta(days=7)) == 0
    assert expiries.count() == 2
    ledger_is_consistent()


def test_a_spend_sweeps_expired_lots_first_and_never_spends_them(resident, ledger_is_consistent):
    stale = award(resident, 100, expires_at=timezone.now() - timedelta(days=1))
    fresh = award(resident, 50, days=30)
    assert account(resident).available_g == 150  # the job has not swept yet
    before = counts()

    with pytest.raises(InsufficientFunds):
        spend(resident, 60)
    assert counts() == before  # the sweep rolled back with the refused spend

    spend(resident, 40)
    assert Lot.objects.get(award=stale).remaining_g == 0
    assert Lot.objects.get(award=fresh).remaining_g == 10
    assert Transfer.objects.get(code=TransferCode.EXPIRY).amount_g == 100
    assert account(resident).available_g == 10
    ledger_is_consistent()


def test_void_after_the_lot_expired_then_expiry_job(resident, ledger_is_consistent):
    lot_award = award(resident, 100, days=5)
    h = hold(resident, 60)
    now = timezone.now()

    assert ledger_expire_lots(now=now + timedelta(days=6)) == 40
    acc = account(resident)
    assert (acc.available_g, acc.debits_pending) == (0, 60)
    ledger_is_consistent()

    ledger_void(pending_id=h.pk)
    # The held grams go back to their (expired) lot; the next run of the job expires them.
    assert Lot.objects.get(award=lot_award).remaining_g == 60
    assert account(resident).available_g == 60
    ledger_is_consistent()

    assert ledger_expire_lots(now=now + timedelta(days=6, minutes=1)) == 60
    assert Lot.objects.get(award=lot_award).remaining_g == 0
    acc = account(resident)
    assert (acc.available_g, acc.debits_pending, acc.credits_posted, acc.debits_posted) == (
        0,
        0,
        100,
        100,
    )
    assert kind_total(AccountKind.EXPIRY, "credits_posted") == 100
    ledger_is_consistent()


def test_post_after_the_lot_expired_keeps_the_grams_spent(resident, ledger_is_consistent):
    award(resident, 100, days=5)
    h = hold(resident, 60)
    assert ledger_expire_lots(now=timezone.now() + timedelta(days=6)) == 40
    ledger_post(pending_id=h.pk)
    acc = account(resident)
    assert (acc.available_g, acc.debits_posted) == (0, 100)
    assert kind_total(AccountKind.REDEMPTION, "credits_posted") == 60
    assert kind_total(AccountKind.EXPIRY, "credits_posted") == 40
    ledger_is_consistent()


# --- reversals ----------------------------------------------------------------------------------


def test_reversal_takes_only_the_unspent_part_of_the_award(resident, ledger_is_consistent):
    admin_user = UserFactory(role="administrator")
    original = award(resident, 100)
    spend(resident, 30)

    reversal = ledger_reverse(transfer_id=original.pk, reason="duplicate claim", actor=admin_user)

    assert (reversal.code, reversal.amount_g, reversal.reverses_id) == ("reversal", 70, original.pk)
    assert reversal.debit_account_id == account(resident).pk
    assert reversal.credit_account.kind == AccountKind.ISSUANCE
    assert "30 g already spent" in reversal.description
    assert reversal.created_by_id == admin_user.pk
    assert Lot.objects.get(award=original).remaining_g == 0
    acc = account(resident)
    assert (acc.available_g, acc.debits_posted) == (0, 100)
    issuance_net = kind_total(AccountKind.ISSUANCE, "debits_posted") - kind_total(
        AccountKind.ISSUANCE, "credits_posted"
    )
    assert issuance_net == 30
    Transfer.objects.get(pk=original.pk)  # the original is never edited or deleted
    with pytest.raises(NothingToReverse):
        ledger_reverse(transfer_id=original.pk, reason="again", actor=admin_user)
    assert Transfer.objects.filter(code=TransferCode.REVERSAL).count() == 1
    ledger_is_consistent()


def test_reversal_leaves_held_grams_and_can_take_them_after_a_void(resident, ledger_is_consistent):
    original = award(resident, 100)
    other = award(resident, 10, days=400)
    h = hold(resident, 40)

    first = ledger_reverse(transfer_id=original.pk, reason="fraud", actor=None)
    assert first.amount_g == 60
    assert account(resident).available_g == 10
    ledger_void(pending_id=h.pk)
    assert Lot.objects.get(award=original).remaining_g == 40
    ledger_is_consistent()

    second = ledger_reverse(transfer_id=original.pk, reason="fraud", actor=None)
    assert second.amount_g == 40
    assert second.pk != first.pk
    assert Lot.objects.get(award=other).remaining_g == 10
    assert account(resident).available_g == 10
    ledger_is_consistent()


def test_only_awards_can_be_reversed_and_a_reason_is_needed(resident, ledger_is_consistent):
    original = award(resident, 100)
    s = spend(resident, 10)
    with pytest.raises(NothingToReverse):
        ledger_reverse(transfer_id=s.pk, reason="no", actor=None)
    with pytest.raises(NothingToReverse):
        ledger_reverse(transfer_id=original.pk, reason="   ", actor=None)
    assert not Transfer.objects.filter(code=TransferCode.REVERSAL).exists()
    ledger_is_consistent()


def test_a_fully_spent_award_cannot_be_reversed(resident, ledger_is_consistent):
    original = award(resident, 100)
    spend(resident, 100)
    before = counts()
    with pytest.raises(NothingToReverse):
        ledger_reverse(transfer_id=original.pk, reason="late", actor=None)
    assert counts() == before
    ledger_is_consistent()


# --- the database and the check as backstops ----------------------------------------------


def test_the_database_refuses_an_overdraft_even_bypassing_the_service(resident):
    award(resident, 100)
    acc = account(resident)

    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=acc.pk).update(debits_posted=F("credits_posted") + 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=acc.pk).update(debits_pending=101)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=acc.pk).update(debits_posted=60, debits_pending=41)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=acc.pk).update(credits_pending=-1)

    acc.refresh_from_db()
    assert (acc.credits_posted, acc.debits_posted, acc.debits_pending) == (100, 0, 0)
    # Exactly the whole balance is allowed.
    Account.objects.filter(pk=acc.pk).update(debits_posted=60, debits_pending=40)
    acc.refresh_from_db()
    assert acc.available_g == 0


def test_system_accounts_may_go_below_zero(resident):
    award(resident, 100)
    issuance = Account.objects.get(kind=AccountKind.ISSUANCE)
    assert issuance.available_g == -100


def test_ledger_check_reports_a_tampered_counter(resident, ledger_is_consistent):
    award(resident, 100)
    spend(resident, 20)
    ledger_is_consistent()
    acc = account(resident)

    Account.objects.filter(pk=acc.pk).update(credits_posted=F("credits_posted") + 5)

    invariants = {v.invariant for v in ledger_check()}
    assert {"debits_equal_credits", "cached_balance", "lots_sum_to_balance"} <= invariants
    with pytest.raises(CommandError, match="violation"):
        ledger_is_consistent()


def test_ledger_check_reports_a_tampered_lot(resident):
    t = award(resident, 100)
    Lot.objects.filter(award=t).update(remaining_g=90)

    invariants = {v.invariant for v in ledger_check()}
    assert invariants == {"lot_allocations", "lots_sum_to_balance"}
    with pytest.raises(CommandError):
        call_command("ledger_check")


def test_ledger_check_reports_a_transfer_without_counters(resident):
    award(resident, 100)
    acc = account(resident)
    issuance = Account.objects.get(kind=AccountKind.ISSUANCE)
    Transfer.objects.create(
        idempotency_key=new_key(),
        payload_hash="x",
        debit_account=acc,
        credit_account=issuance,
        amount_g=10,
        flag=TransferFlag.POSTED,
        code=TransferCode.SPEND,
    )
    assert {v.invariant for v in ledger_check()} == {"cached_balance"}


def test_a_system_account_shard_rolled_back_is_not_served_from_the_cache(
    settings, resident, other_resident, ledger_is_consistent
):
    """A spend refused for want of grams rolls back the redemption shard it created; the id
    cached for that shard must not later resolve to another account (SQLite reuses ids)."""
    settings.LEDGER_SYSTEM_SHARDS = 1
    award(resident, 10)
    with pytest.raises(InsufficientFunds):
        spend(resident, 11)  # creates redemption#0, then rolls it back
    assert not Account.objects.filter(kind=AccountKind.REDEMPTION).exists()
    other_account = account_for_user(user=other_resident)  # may take the freed id

    t = spend(resident, 10)

    assert t.credit_account.kind == AccountKind.REDEMPTION
    assert t.credit_account_id != other_account.pk
    other_account.refresh_from_db()
    assert other_account.credits_posted == 0
    assert system_account(kind=AccountKind.REDEMPTION, shard=0).kind == AccountKind.REDEMPTION
    ledger_is_consistent()


def test_system_account_shards_spread_awards(settings):
    settings.LEDGER_SYSTEM_SHARDS = 4
    users = UserFactory.create_batch(3)
    for i in range(40):
        award(users[i % 3], 1)
    shards = set(Account.objects.filter(kind=AccountKind.ISSUANCE).values_list("shard", flat=True))
    assert shards <= {0, 1, 2, 3}
    assert len(shards) > 1
    assert kind_total(AccountKind.ISSUANCE, "debits_posted") == 40
    assert ledger_check() == []


def test_a_hold_past_its_timeout_is_released_not_posted(ledger_is_consistent):
    from carbon.errors import HoldExpired
    from carbon.services.ledger import balance_for_user

    user = UserFactory()
    ledger_award(
        user=user,
        amount_g=100,
        category="green_travel",
        idempotency_key="a-1",
        description="award",
        expires_at=timezone.now() + timedelta(days=30),
    )
    hold = ledger_hold(
        user=user,
        amount_g=60,
        idempotency_key="h-1",
        description="hold",
        timeout=timedelta(seconds=-1),
    )
    with pytest.raises(HoldExpired):
        ledger_post(pending_id=hold.pk)
    assert hold.resolution.flag == "void_pending"
    assert balance_for_user(user=user).available_g == 100
    ledger_is_consistent()
