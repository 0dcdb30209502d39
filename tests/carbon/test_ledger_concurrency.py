"""The ledger under real concurrency: threads with their own PostgreSQL connections, started
together on a barrier. SQLite ignores row locks, so these run only on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from carbon.errors import InsufficientFunds, PendingAlreadyResolved
from carbon.models import Account, AccountKind, Lot, Transfer, TransferCode
from carbon.services.ledger import (
    ledger_award,
    ledger_hold,
    ledger_post,
    ledger_reverse,
    ledger_spend,
    ledger_void,
)
from carbon.services.ledger_check import ledger_check
from tests.carbon.api_helpers import new_key
from tests.carbon.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(n: int, work: Callable[[int], object], timeout: float = 120) -> list:
    """Run work(0..n-1) in n threads released at once; return each result or exception."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "threads still running: a deadlock or a hang"
    return results


def award(user, amount_g, *, idempotency_key=None, days=30):
    return ledger_award(
        user=user,
        amount_g=amount_g,
        category="green_travel",
        idempotency_key=idempotency_key or new_key(),
        description="award",
        expires_at=timezone.now() + timedelta(days=days),
    )


def test_fifty_concurrent_spends_never_overdraw(transactional_db):
    resident = UserFactory()
    award(resident, 600, days=10)
    award(resident, 400, days=20)

    results = run_together(
        50,
        lambda i: ledger_spend(
            user=resident, amount_g=30, idempotency_key=f"spend-{i}", description="race"
        ),
    )

    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, InsufficientFunds)
    ]
    assert unexpected == []
    spent = [r for r in results if isinstance(r, Transfer)]
    refused = [r for r in results if isinstance(r, InsufficientFunds)]
    assert (len(spent), len(refused)) == (33, 17)
    account = Account.objects.get(user=resident)
    assert (account.available_g, account.debits_posted, account.credits_posted) == (10, 990, 1000)
    assert Lot.objects.filter(account=account).aggregate(s=Sum("remaining_g"))["s"] == 10
    redeemed = Account.objects.filter(kind=AccountKind.REDEMPTION).aggregate(
        s=Sum("credits_posted")
    )
    assert redeemed["s"] == 990  # no gram lost or made up
    assert Transfer.objects.filter(code=TransferCode.SPEND).count() == 33
    assert ledger_check() == []


def test_twenty_concurrent_retries_of_one_award_credit_once(transactional_db):
    resident = UserFactory()  # no ledger account yet: the threads also race to create it

    results = run_together(20, lambda i: award(resident, 250, idempotency_key="claim:42:award"))

    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({r.pk for r in results}) == 1
    assert Transfer.objects.count() == 1
    assert Lot.objects.count() == 1
    assert Account.objects.filter(user=resident).count() == 1
    account = Account.objects.get(user=resident)
    assert (account.credits_posted, account.available_g) == (250, 250)
    assert ledger_check() == []


def test_concurrent_awards_to_many_residents_all_land(transactional_db, settings):
    settings.LEDGER_SYSTEM_SHARDS = 4  # few shards: threads do meet on the same rows
    residents = UserFactory.create_batch(10)
    per_thread = 10

    def work(i: int) -> int:
        for n in range(per_thread):
            award(residents[(i + n) % len(residents)], 1 + i, idempotency_key=f"award-{i}-{n}")
        return per_thread

    results = run_together(30, work)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert Transfer.objects.filter(code=TransferCode.AWARD).count() == 30 * per_thread
    expected_total = sum((1 + i) * per_thread for i in range(30))
    residents_total = Account.objects.residents().aggregate(s=Sum("credits_posted"))["s"]
    issued = Account.objects.filter(kind=AccountKind.ISSUANCE).aggregate(s=Sum("debits_posted"))[
        "s"
    ]
    assert residents_total == issued == expected_total
    assert Account.objects.filter(kind=AccountKind.ISSUANCE).count() > 1  # spread over shards
    assert ledger_check() == []


def test_a_hold_raced_by_posts_and_voids_resolves_once(transactional_db):
    resident = UserFactory()
    award(resident, 100)
    hold = ledger_hold(user=resident, amount_g=70, idempotency_key="order:1", description="hold")

    def work(i: int):
        return ledger_post(pending_id=hold.pk) if i % 2 else ledger_void(pending_id=hold.pk)

    results = run_together(20, work)

    resolution = Transfer.objects.get(pending=hold)
    winners = [r for r in results if isinstance(r, Transfer)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(e, PendingAlreadyResolved) for e in losers)
    assert len(winners) == len(losers) == 10  # every post or every void wins, never both
    assert {w.pk for w in winners} == {resolution.pk}
    account = Account.objects.get(user=resident)
    if resolution.flag == "post_pending":
        assert (account.available_g, account.debits_posted, account.debits_pending) == (30, 70, 0)
    else:
        assert (account.available_g, account.debits_posted, account.debits_pending) == (100, 0, 0)
    assert ledger_check() == []


def test_concurrent_spends_holds_and_awards_on_one_resident(transactional_db, settings):
    settings.LEDGER_SYSTEM_SHARDS = 2
    resident = UserFactory()
    award(resident, 500)

    def work(i: int):
        kind = i % 3
        if kind == 0:
            return ledger_spend(
                user=resident, amount_g=40, idempotency_key=f"s{i}", description="s"
            )
        if kind == 1:
            h = ledger_hold(user=resident, amount_g=40, idempotency_key=f"h{i}", description="h")
            return ledger_void(pending_id=h.pk) if i % 2 else ledger_post(pending_id=h.pk)
        return award(resident, 25, idempotency_key=f"a{i}")

    results = run_together(30, work)

    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, InsufficientFunds)
    ]
    assert unexpected == []
    account = Account.objects.get(user=resident)
    awarded = 500 + 25 * 10
    spent = 40 * Transfer.objects.filter(code=TransferCode.SPEND).count()
    posted = 40 * Transfer.objects.filter(flag="post_pending").count()
    assert account.available_g == awarded - spent - posted
    assert account.debits_pending == 0
    assert ledger_check() == []


def test_awards_and_reversals_on_one_resident_do_not_deadlock(transactional_db, settings):
    """An award locks issuance and resident rows in id order; a reversal must not lock them
    the other way round, or the two wait on each other."""
    settings.LEDGER_SYSTEM_SHARDS = 1  # everyone meets on issuance#0
    seed = UserFactory()
    award(seed, 1)  # issuance#0 gets a lower id than the resident's account
    resident = UserFactory()
    originals = [award(resident, 10) for _ in range(20)]

    def work(i: int):
        if i % 2:
            return ledger_reverse(transfer_id=originals[i].pk, reason="race", actor=None)
        return award(resident, 10, idempotency_key=f"more-{i}")

    results = run_together(20, work)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert Transfer.objects.filter(code=TransferCode.REVERSAL).count() == 10
    assert Account.objects.get(user=resident).available_g == 200 + 100 - 100
    assert ledger_check() == []
