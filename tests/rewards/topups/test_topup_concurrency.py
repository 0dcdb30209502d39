"""Top-ups under real concurrency, on PostgreSQL (SQLite ignores row locks): threads with their
own connections, released together. Workers and sweeps racing on one row send it once; the
same hold asked for by concurrent requests makes one top-up."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.db import transaction

from carbon.models import Transfer, TransferFlag
from carbon.services.ledger_check import ledger_check
from rewards.topups import services
from rewards.topups.models import TopUp, TopUpStatus
from rewards.topups.services import topup_request, topup_send, topups_sweep
from tests.carbon.factories import UserFactory
from tests.carbon.test_ledger_concurrency import run_together
from tests.rewards.topups.factories import CARD, hold_for, linked_card, points, topup_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker_down(monkeypatch):
    """The send scheduled at commit never reaches a worker: the row waits for whoever takes
    it first (the sweep, a late task)."""
    monkeypatch.setattr(services, "_enqueue_send", lambda topup_id: None)


@pytest.fixture
def resident_with_card(transactional_db):
    user = UserFactory()
    linked_card(user)
    points(user)
    return user


def test_workers_and_sweeps_racing_on_one_row_send_it_once(
    resident_with_card, operator, operator_server, broker_down
):
    operator_server.delay = 0.3  # the first send is still on its way when the others look
    topup = topup_for(resident_with_card, operator.partner)

    results = run_together(8, lambda i: topup_send(topup_id=topup.pk) if i % 2 else topups_sweep())

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len(operator_server.received) == 1
    topup.refresh_from_db()
    assert topup.status == TopUpStatus.CONFIRMED and topup.attempts == 1
    assert list(
        Transfer.objects.filter(pending_id=topup.hold_id).values_list("flag", flat=True)
    ) == [TransferFlag.POST_PENDING]
    assert ledger_check() == []


def test_the_send_scheduled_at_commit_and_the_sweep_send_once(
    resident_with_card, operator, operator_server
):
    """Without the stand-in: the commit runs the send task (eagerly, as a worker would) while
    a sweep runs beside it."""
    operator_server.delay = 0.3

    def work(i):
        if i == 0:
            return topup_for(resident_with_card, operator.partner)
        for _ in range(20):  # until the row exists, then sweep once more
            if TopUp.objects.exists():
                return topups_sweep()
            time.sleep(0.02)
        return topups_sweep()

    results = run_together(2, work)

    assert not [r for r in results if isinstance(r, BaseException)], results
    topup = TopUp.objects.get()
    assert topup.status == TopUpStatus.CONFIRMED
    assert len(operator_server.received) == 1 and topup.attempts == 1
    assert ledger_check() == []


def test_concurrent_requests_for_one_hold_make_one_top_up(resident_with_card, operator):
    operator.partner.endpoint_url = "http://127.0.0.1:9"
    operator.partner.save(update_fields=["endpoint_url"])
    hold = hold_for(resident_with_card)

    def ask(i):
        with transaction.atomic():
            return topup_request(
                user=resident_with_card,
                hold=hold,
                operator=operator.partner,
                amount_cny=Decimal("20.00"),
                card_number=CARD,
                reference="V-RACE",
            ).pk

    results = run_together(6, ask)

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len(set(results)) == 1 and TopUp.objects.count() == 1
