"""The ledger's fast paths: an award is one statement on PostgreSQL and takes the account
the caller already has; spends and holds take their lots in one statement whatever the
number of lots; the lifetime-earned counter that GET /me reads follows awards and
reversals (and ledger_check catches it drifting); a transaction's balance pushes and
leaderboard credits go out once, after commit, without what a savepoint rolled back.

The rules themselves (order of lots, refusals, idempotency) are the ones tests/carbon/
test_ledger*.py check on both databases; here is what the fast paths add."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carbon.errors import InsufficientFunds
from carbon.leaderboards import engine
from carbon.leaderboards.backends import get_backend, reset_backends
from carbon.leaderboards.ledger_source import RESIDENTS
from carbon.models import Account, Lot, LotAllocation, Transfer, TransferCode
from carbon.services import realtime
from carbon.services.ledger import (
    account_for_user,
    ledger_award,
    ledger_hold,
    ledger_reverse,
    ledger_spend,
)
from carbon.services.ledger_check import ledger_check
from tests.carbon.api_helpers import client_for, new_key

pytestmark = pytest.mark.django_db


def award(user, amount_g, *, days=30, category="green_travel", **kw):
    return ledger_award(
        user=user,
        amount_g=amount_g,
        category=category,
        idempotency_key=kw.pop("idempotency_key", None) or new_key(),
        description="test award",
        expires_at=timezone.now() + timedelta(days=days),
        **kw,
    )


@pytest.fixture
def shards_cached(django_capture_on_commit_callbacks, settings):
    """Every sharded system account exists and its id is cached, as in a running process
    after its first writes (the cache fills on commit, which a test's transaction never
    reaches): a write picks a random shard, and a first use of one costs statements."""
    from carbon.models import AccountKind
    from carbon.services.ledger import system_account

    sharded = [k for k in AccountKind if k not in (AccountKind.RESIDENT, AccountKind.ENTERPRISE)]
    with django_capture_on_commit_callbacks(execute=True):
        for kind in sharded:
            for shard in range(max(1, settings.LEDGER_SYSTEM_SHARDS)):
                system_account(kind=kind, shard=shard)


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE"))]


# --- awards ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_an_award_with_the_callers_account_is_one_statement_on_postgresql(resident, shards_cached):
    account = account_for_user(user=resident)
    award(resident, 10)

    with CaptureQueriesContext(connection) as queries:
        transfer = award(resident, 250, account=account, days=40)
        lot_expiry = transfer.lot.expires_at  # attached: no query

    assert len(queries) == 1, [q["sql"] for q in queries]
    assert "SAVEPOINT" not in queries[0]["sql"]
    stored = Transfer.objects.get(pk=transfer.pk)
    assert (stored.amount_g, stored.code, stored.credit_account_id) == (250, "award", account.pk)
    assert stored.created_at == transfer.created_at
    assert Lot.objects.get(award=transfer).expires_at == lot_expiry
    account.refresh_from_db()
    assert (account.credits_posted, account.lifetime_g) == (260, 260)
    assert ledger_check() == []


def test_the_award_returns_saved_rows_with_its_lot(resident):
    transfer = award(resident, 75)

    assert transfer.pk is not None and not transfer._state.adding
    assert transfer.lot.pk == Lot.objects.get(award_id=transfer.pk).pk
    assert (transfer.lot.amount_g, transfer.lot.remaining_g) == (75, 75)
    assert transfer.credit_account.user_id == resident.pk


def test_an_account_that_is_not_the_residents_is_refused_and_nothing_is_written(
    resident, other_resident
):
    theirs = account_for_user(user=other_resident)

    with pytest.raises(ValueError):
        award(resident, 100, account=theirs)

    assert Transfer.objects.count() == 0
    theirs.refresh_from_db()
    assert (theirs.credits_posted, theirs.lifetime_g) == (0, 0)


def test_a_retried_award_inside_a_transaction_returns_the_original_and_the_transaction_goes_on(
    resident, shards_cached
):
    account = account_for_user(user=resident)
    with transaction.atomic():
        first = award(resident, 120, idempotency_key="claim:7:award", account=account)
        with CaptureQueriesContext(connection) as queries:
            again = award(resident, 120, idempotency_key="claim:7:award", account=account)
        # Still usable: on PostgreSQL the duplicate key aborted nothing.
        assert Transfer.objects.filter(idempotency_key="claim:7:award").count() == 1

    assert again.pk == first.pk
    if connection.vendor == "postgresql":
        assert not any("SAVEPOINT" in q["sql"] for q in queries)
    account.refresh_from_db()
    assert (account.credits_posted, account.lifetime_g) == (120, 120)
    assert ledger_check() == []


# --- spends and holds -----------------------------------------------------------------------


def spend_queries(user, amount_g, **kw) -> int:
    with CaptureQueriesContext(connection) as queries:
        ledger_spend(
            user=user, amount_g=amount_g, idempotency_key=new_key(), description="spend", **kw
        )
    return len(writes(queries))


@pytest.mark.postgres
def test_a_spend_takes_its_lots_in_one_statement_however_many(
    resident, other_resident, shards_cached
):
    for user in (resident, other_resident):
        for days in (10, 20, 30, 40, 50):
            award(user, 100, days=days)

    one_lot = spend_queries(resident, 50)
    five_lots = spend_queries(other_resident, 450)

    assert one_lot == five_lots
    taken = {
        a.lot.expires_at.date(): a.amount_g
        for a in LotAllocation.objects.filter(transfer__debit_account__user=other_resident)
    }
    assert sorted(taken.values(), reverse=True) == [100, 100, 100, 100, 50]
    # Oldest expiry first: the lot left with grams is the last to expire.
    left = Lot.objects.filter(account__user=other_resident, remaining_g__gt=0)
    assert [(lot.remaining_g, lot.amount_g) for lot in left] == [(50, 100)]
    assert (
        left.get().expires_at == Lot.objects.filter(account__user=other_resident).last().expires_at
    )
    assert ledger_check() == []


def test_a_hold_short_in_its_categories_is_refused_with_the_grams_short_and_writes_nothing(
    resident,
):
    award(resident, 300, category="green_travel")
    award(resident, 200, category="waste")

    with pytest.raises(InsufficientFunds) as refused:
        ledger_hold(
            user=resident,
            amount_g=250,
            idempotency_key=new_key(),
            description="hold",
            categories=["waste"],
        )

    assert refused.value.details == {"short_g": 50, "categories": ["waste"]}
    assert Transfer.objects.filter(code=TransferCode.HOLD).count() == 0
    assert LotAllocation.objects.count() == 0
    assert sorted(Lot.objects.values_list("remaining_g", flat=True)) == [200, 300]
    assert ledger_check() == []


# --- the lifetime counter -------------------------------------------------------------------


def test_lifetime_counts_awards_less_reversals_and_not_spends(resident):
    kept = award(resident, 500)
    taken_back = award(resident, 300)
    ledger_spend(user=resident, amount_g=100, idempotency_key=new_key(), description="spend")
    ledger_reverse(transfer_id=taken_back.pk, reason="duplicate trip", actor=None)

    account = Account.objects.get(user=resident)
    assert account.lifetime_g == 500  # 500 + 300 - 300 reversed; the spend is not a loss
    body = client_for(resident).get("/api/v1/me").json()
    assert body["lifetime_g"] == 500
    assert kept.amount_g == 500
    assert ledger_check() == []


def test_ledger_check_reports_a_lifetime_counter_that_drifted(resident):
    award(resident, 400)
    Account.objects.filter(user=resident).update(lifetime_g=399)

    assert [v.invariant for v in ledger_check()] == ["lifetime_earned"]


def test_the_migration_backfills_the_counter_from_the_transfers(resident, other_resident):
    award(resident, 400)
    reversed_award = award(resident, 50)
    ledger_reverse(transfer_id=reversed_award.pk, reason="wrong", actor=None)
    award(other_resident, 70)
    Account.objects.update(lifetime_g=0)

    migration = importlib.import_module("carbon.migrations.0013_ledger_one_statement")
    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL)

    assert dict(Account.objects.residents().values_list("user_id", "lifetime_g")) == {
        resident.pk: 400,
        other_resident.pk: 70,
    }
    assert ledger_check() == []


# --- one announcement per transaction -------------------------------------------------------


@pytest.fixture
def announced(monkeypatch):
    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(
        realtime, "balance_changed", lambda *, user_ids: calls.append(("balances", user_ids))
    )
    monkeypatch.setattr(
        realtime,
        "credits_changed",
        lambda *, entries, groups=None, balances_of=(): calls.append(
            ("credits", ([e[:2] for e in entries], list(balances_of)))
        ),
    )
    return calls


def test_a_transactions_awards_are_announced_once_after_commit_without_rolled_back_ones(
    resident, other_resident, announced, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            award(resident, 100)
            try:
                with transaction.atomic():
                    award(other_resident, 999)
                    raise RuntimeError("the claim failed after its award")
            except RuntimeError:
                pass
            award(other_resident, 40)
            ledger_spend(user=resident, amount_g=30, idempotency_key=new_key(), description="s")
            assert announced == []  # nothing before the commit

    assert announced == [
        (
            "credits",
            ([(resident.pk, 100), (other_resident.pk, 40)], [resident.pk, other_resident.pk]),
        )
    ]


def test_what_came_before_a_rolled_back_savepoint_still_goes_out(
    resident, other_resident, announced, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            award(resident, 100)
            try:
                with transaction.atomic():
                    award(other_resident, 999)
                    raise RuntimeError("the last change rolled back")
            except RuntimeError:
                pass

    assert announced == [("credits", ([(resident.pk, 100)], [resident.pk]))]


def test_a_transaction_that_rolls_back_announces_nothing(
    resident, announced, django_capture_on_commit_callbacks
):
    award(resident, 100)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            ledger_spend(user=resident, amount_g=30, idempotency_key=new_key(), description="s")
            raise RuntimeError

    assert announced == []


def test_a_spend_alone_pushes_the_balance_only(
    resident, announced, django_capture_on_commit_callbacks
):
    award(resident, 100)
    with django_capture_on_commit_callbacks(execute=True):
        ledger_spend(user=resident, amount_g=30, idempotency_key=new_key(), description="s")

    assert announced == [("balances", [resident.pk])]


@pytest.mark.redis
@pytest.mark.parametrize("publish_seconds", [0, 0.02], ids=["inline", "outbox"])
def test_on_redis_an_award_marks_its_boards_and_balance_even_after_the_scripts_were_lost(
    resident, settings, django_capture_on_commit_callbacks, publish_seconds
):
    settings.LEADERBOARD_BACKEND = "redis"
    settings.LEADERBOARD_PUBLISH_SECONDS = publish_seconds
    reset_backends()
    backend = get_backend()
    backend.flush_all()
    backend.redis.script_flush()  # a restarted server: the write's EVALSHA finds no script
    try:
        with django_capture_on_commit_callbacks(execute=True):
            award(resident, 120)
        engine.outbox_flush()  # through the outbox: sent by now

        member = engine.member_key(resident.pk)
        assert backend.score(series=RESIDENTS, bucket="all", member=member) == 120
        dirty = backend.redis.smembers("lb:dirty")
        assert f"balance:{resident.pk}" in dirty
        assert any(topic.startswith("board:residents.") for topic in dirty)
    finally:
        backend.flush_all()
        reset_backends()
