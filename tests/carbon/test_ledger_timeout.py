"""A hold's timeout is decided under the account lock: a post that waits for the lock while
the timeout passes releases the hold (HoldExpired, grams back), never posts it late."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from carbon.errors import HoldExpired, PendingAlreadyResolved
from carbon.models import Account, Transfer, TransferFlag
from carbon.services import ledger
from carbon.services.ledger import (
    account_for_user,
    balance_for_user,
    ledger_award,
    ledger_hold,
    ledger_post,
)
from carbon.services.ledger_check import ledger_check
from tests.carbon.factories import UserFactory


def _resident_with_hold(*, timeout: timedelta):
    user = UserFactory()
    ledger_award(
        user=user,
        amount_g=100,
        category="green_travel",
        idempotency_key=str(uuid.uuid4()),
        description="award",
        expires_at=timezone.now() + timedelta(days=30),
    )
    hold = ledger_hold(
        user=user,
        amount_g=60,
        idempotency_key=str(uuid.uuid4()),
        description="hold",
        timeout=timeout,
    )
    return user, hold


@pytest.mark.django_db
def test_a_hold_whose_timeout_passes_while_the_post_waits_for_the_lock_is_released(
    monkeypatch,
):
    user, hold = _resident_with_hold(timeout=timedelta(minutes=1))
    start = timezone.now()
    clock = {"now": start + timedelta(seconds=59)}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    lock_account = ledger._lock_account

    def lock_while_time_passes(account):
        # The post asked for the lock a second before the timeout; it gets it after.
        clock["now"] = start + timedelta(minutes=1, seconds=1)
        return lock_account(account)

    monkeypatch.setattr(ledger, "_lock_account", lock_while_time_passes)

    with pytest.raises(HoldExpired):
        ledger_post(pending_id=hold.pk)

    resolution = Transfer.objects.get(pending_id=hold.pk)
    assert resolution.flag == TransferFlag.VOID_PENDING
    assert resolution.description == "Hold expired"
    assert balance_for_user(user=user).available_g == 100
    assert account_for_user(user=user).debits_pending == 0
    # Asked again, the answer stays: the hold was released, it cannot be posted now.
    with pytest.raises(PendingAlreadyResolved):
        ledger_post(pending_id=hold.pk)
    assert ledger_check() == []


@pytest.mark.django_db
def test_a_hold_posted_just_before_its_timeout_is_posted():
    user, hold = _resident_with_hold(timeout=timedelta(minutes=1))

    resolution = ledger_post(pending_id=hold.pk)

    assert resolution.flag == TransferFlag.POST_PENDING
    assert ledger_post(pending_id=hold.pk).pk == resolution.pk
    assert balance_for_user(user=user).available_g == 40
    assert ledger_check() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_post_blocked_on_the_account_lock_past_the_timeout_releases_the_hold():
    """The race as it happened: another transaction holds the resident's row while the
    hold's timeout passes; the post queued behind it must not land afterwards."""
    user, hold = _resident_with_hold(timeout=timedelta(seconds=1))
    account_id = account_for_user(user=user).pk
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic():
                Account.objects.select_for_update().get(pk=account_id)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    outcome: dict = {}

    def post():
        try:
            outcome["result"] = ledger_post(pending_id=hold.pk)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcome["result"] = exc
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row, daemon=True)
    holder.start()
    assert locked.wait(10)
    poster = threading.Thread(target=post, daemon=True)
    poster.start()
    assert hold.timeout_at > timezone.now(), "the post must start before the timeout"
    time.sleep(0.3)
    assert poster.is_alive(), "the post should be waiting for the account lock"
    while timezone.now() <= hold.timeout_at + timedelta(milliseconds=200):
        time.sleep(0.05)
    release.set()
    holder.join(10)
    poster.join(30)

    assert isinstance(outcome["result"], HoldExpired), outcome
    assert Transfer.objects.get(pending_id=hold.pk).flag == TransferFlag.VOID_PENDING
    assert balance_for_user(user=user).available_g == 100
    assert ledger_check() == []
