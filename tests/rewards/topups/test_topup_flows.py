"""Top-ups end to end against the operator as a real local HTTP server: confirmed -> the
hold is posted; refused -> voided and the points come back; a timeout after the operator
acted -> retried with the same request id and posted once; never answered -> failed at the
deadline; a worker killed mid-send -> the sweep sends the row again after its lease. The
ledger check passes after each."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from carbon.models import Transfer, TransferFlag
from carbon.services.ledger import balance_for_user, hold_status, ledger_expire_pending
from rewards.topups.models import TopUp, TopUpStatus
from rewards.topups.services import _claim
from tests.partner_server import DROP
from tests.rewards.topups.factories import send, sweep, topup_for

pytestmark = pytest.mark.django_db

START = 5000  # the card holder's points


def available(user) -> int:
    return balance_for_user(user=user).available_g


def resolutions(topup: TopUp) -> list[str]:
    return list(Transfer.objects.filter(pending_id=topup.hold_id).values_list("flag", flat=True))


def later(**delta) -> timezone.datetime:
    return timezone.now() + timedelta(**delta)


def wait_for_answer(server, request_id: str, seconds: float = 5) -> None:
    """Until the operator has finished acting on the request (its answer is kept)."""
    deadline = time.monotonic() + seconds
    while request_id not in server._answers:
        assert time.monotonic() < deadline, "the operator never finished the request"
        time.sleep(0.05)


def test_a_confirmed_top_up_posts_the_hold_once_and_forgets_the_card_number(
    card_holder,
    operator,
    operator_server,
    settled,
    ledger_is_consistent,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        topup = topup_for(card_holder, operator.partner, grams=500, amount="20.00")
        # Inside the redemption's transaction nothing is sent yet.
        assert operator_server.received == []

    topup.refresh_from_db()
    [request] = operator_server.received
    assert request.signature_ok and request.path == "/api/topups"
    assert request.request_id == str(topup.request_id)
    assert request.json == {
        "request_id": str(topup.request_id),
        "card_number": "6227001234567890",
        "amount_fen": 2000,
        "currency": "CNY",
        "reference": topup.reference,
        "expires_at": topup.deadline_at.isoformat(),
    }
    assert topup.status == TopUpStatus.CONFIRMED and topup.attempts == 1
    assert topup.operator_ref == f"WM-{str(topup.request_id)[:8]}"
    assert topup.points_taken is True and topup.settled_at is not None
    assert topup.card_number_encrypted is None and topup.card_last_digits == "7890"
    assert resolutions(topup) == [TransferFlag.POST_PENDING]
    assert available(card_holder) == START - 500
    assert settled == [(topup.pk, "confirmed")]
    # Sending again (a duplicate task, the sweep) does nothing more.
    send(topup_id=topup.pk)
    assert sweep(now=later(days=3)) == 0
    assert len(operator_server.received) == 1 and resolutions(topup) == ["post_pending"]
    assert settled == [(topup.pk, "confirmed")]
    ledger_is_consistent()


def test_a_refused_top_up_voids_the_hold_and_the_points_come_back(
    card_holder, operator, operator_server, settled, ledger_is_consistent
):
    operator_server.handler = lambda request: (
        422,
        {"code": "card_blocked", "message": "This card was reported lost."},
    )
    topup = topup_for(card_holder, operator.partner)
    assert available(card_holder) == START - 500

    topup = send(topup_id=topup.pk)

    assert topup.status == TopUpStatus.REFUSED and topup.points_taken is False
    assert "card_blocked" in topup.last_error and "reported lost" in topup.last_error
    assert topup.card_number_encrypted is None
    assert resolutions(topup) == [TransferFlag.VOID_PENDING]
    assert hold_status(Transfer.objects.get(pk=topup.hold_id)) == "voided"
    assert available(card_holder) == START
    assert settled == [(topup.pk, "refused")]
    ledger_is_consistent()


def test_a_timeout_after_the_operator_acted_is_retried_with_the_same_id_and_posted_once(
    card_holder, operator, operator_server, settled, ledger_is_consistent
):
    operator_server.delay = 1.2  # longer than our 0.5 s timeout: the operator still acts
    topup = topup_for(card_holder, operator.partner)

    topup = send(topup_id=topup.pk)

    assert topup.status == TopUpStatus.QUEUED and topup.attempts == 1
    assert "Timeout" in topup.last_error
    assert topup.next_attempt_at > timezone.now() and topup.lease_token is None
    assert resolutions(topup) == [] and available(card_holder) == START - 500
    assert settled == []
    wait_for_answer(operator_server, str(topup.request_id))
    # Not due yet: the sweep leaves it until its retry time.
    assert sweep() == 0

    assert sweep(now=topup.next_attempt_at) == 1

    topup.refresh_from_db()
    assert topup.status == TopUpStatus.CONFIRMED and topup.attempts == 2
    first, retry = operator_server.received
    assert first.request_id == retry.request_id == str(topup.request_id)
    assert first.body == retry.body and retry.repeat
    assert len(operator_server.acted_on()) == 1
    assert resolutions(topup) == [TransferFlag.POST_PENDING]
    assert available(card_holder) == START - 500
    assert settled == [(topup.pk, "confirmed")]
    ledger_is_consistent()


@pytest.mark.parametrize(
    "silence",
    [
        pytest.param({"handler": lambda request: (503, {"busy": True})}, id="5xx"),
        pytest.param({"handler": lambda request: DROP}, id="dropped connection"),
        pytest.param(
            {"handler": lambda request: (202, {"status": "processing"})}, id="no decision"
        ),
        pytest.param(
            {"handler": lambda request: (404, {"detail": "no such path"})}, id="no reason"
        ),
    ],
)
def test_an_operator_that_never_answers_fails_at_the_deadline_and_the_points_come_back(
    card_holder, operator, operator_server, settled, settings, ledger_is_consistent, silence
):
    for name, value in silence.items():
        setattr(operator_server, name, value)
    settings.TOPUP_RETRY_BASE_SECONDS = 10
    settings.TOPUP_RETRY_MAX_SECONDS = 40
    topup = topup_for(card_holder, operator.partner)
    delays = []

    for attempt in range(1, 5):
        before = timezone.now()
        topup = send(topup_id=topup.pk, now=topup.next_attempt_at)
        assert topup.status == TopUpStatus.QUEUED and topup.attempts == attempt
        assert topup.last_error
        delays.append((topup.next_attempt_at - before).total_seconds())

    # Exponential (10, 20, 40, capped at 40), each with up to half of it as jitter.
    for delay, full in zip(delays, [10, 20, 40, 40], strict=True):
        assert full / 2 - 1 <= delay <= full + 1, delays
    assert len(operator_server.received) == 4
    assert {r.request_id for r in operator_server.received} == {str(topup.request_id)}
    assert resolutions(topup) == [] and available(card_holder) == START - 500

    # At the deadline the sweep gives up without sending again.
    sent = len(operator_server.received)
    assert sweep(now=topup.deadline_at) == 1
    topup.refresh_from_db()
    assert len(operator_server.received) == sent
    assert topup.status == TopUpStatus.FAILED and topup.points_taken is False
    assert topup.last_error.startswith("no answer from the operator in time")
    assert topup.card_number_encrypted is None
    assert resolutions(topup) == [TransferFlag.VOID_PENDING]
    assert available(card_holder) == START
    assert settled == [(topup.pk, "failed")]
    ledger_is_consistent()


def test_after_the_most_attempts_it_fails_without_waiting_for_the_deadline(
    card_holder, operator, operator_server, settings, ledger_is_consistent
):
    operator_server.handler = lambda request: (500, {})
    settings.TOPUP_MAX_ATTEMPTS = 2
    topup = topup_for(card_holder, operator.partner)

    send(topup_id=topup.pk)
    sweep(now=later(hours=1))
    topup.refresh_from_db()
    assert topup.attempts == 2 and topup.status == TopUpStatus.QUEUED
    assert topup.next_attempt_at <= timezone.now()  # due at once: to be failed
    sweep()

    topup.refresh_from_db()
    assert topup.status == TopUpStatus.FAILED and len(operator_server.received) == 2
    assert available(card_holder) == START
    ledger_is_consistent()


def test_a_row_a_killed_worker_left_sending_is_sent_again_after_its_lease(
    card_holder, operator, operator_server, settled, ledger_is_consistent
):
    topup = topup_for(card_holder, operator.partner)
    # A worker claims the row, and dies before it sends anything.
    assert _claim(topup_id=topup.pk, now=timezone.now()) is not None
    topup.refresh_from_db()
    assert topup.status == TopUpStatus.SENDING and topup.attempts == 1

    # While its lease holds, nobody else sends the row.
    assert sweep() == 0
    assert send(topup_id=topup.pk).status == TopUpStatus.SENDING
    assert operator_server.received == []

    assert sweep(now=topup.lease_until) == 1

    topup.refresh_from_db()
    assert topup.status == TopUpStatus.CONFIRMED and topup.attempts == 2
    assert len(operator_server.received) == 1
    assert resolutions(topup) == [TransferFlag.POST_PENDING]
    assert settled == [(topup.pk, "confirmed")]
    ledger_is_consistent()


def test_a_worker_killed_after_the_operator_acted_is_answered_from_the_operators_memory(
    card_holder, operator, operator_server, settled, ledger_is_consistent
):
    from carbon.services.partner_outbound import partner_send
    from rewards.topups.services import _payload

    topup = topup_for(card_holder, operator.partner)
    claim = _claim(topup_id=topup.pk, now=timezone.now())
    # The request went out and the operator topped up the card; the worker died before it
    # could record the answer.
    partner_send(
        partner=operator.partner,
        path="/topups",
        payload=_payload(claim.topup, claim.digits),
        request_id=str(topup.request_id),
    )

    sweep(now=claim.topup.lease_until + timedelta(seconds=1))

    topup.refresh_from_db()
    assert topup.status == TopUpStatus.CONFIRMED
    assert len(operator_server.received) == 2 and len(operator_server.acted_on()) == 1
    assert resolutions(topup) == [TransferFlag.POST_PENDING]
    assert available(card_holder) == START - 500
    assert settled == [(topup.pk, "confirmed")]
    ledger_is_consistent()


def test_a_confirmation_after_the_ledger_released_the_hold_is_recorded_and_never_posted(
    card_holder, operator, operator_server, settled, ledger_is_consistent
):
    topup = topup_for(card_holder, operator.partner)
    # The hold's timeout passes while the request is on its way (a caller that gave a
    # shorter timeout than it was told to): the post finds it expired.
    Transfer.objects.filter(pk=topup.hold_id).update(timeout_at=timezone.now())

    topup = send(topup_id=topup.pk)

    assert topup.status == TopUpStatus.CONFIRMED and topup.points_taken is False
    assert "after the points hold had been released" in topup.last_error
    assert resolutions(topup) == [TransferFlag.VOID_PENDING]
    assert available(card_holder) == START
    assert settled == [(topup.pk, "confirmed")]
    ledger_is_consistent()


def test_a_hold_the_ledger_released_before_the_send_is_never_sent(
    card_holder, operator, operator_server, settled, ledger_is_consistent
):
    topup = topup_for(card_holder, operator.partner)
    Transfer.objects.filter(pk=topup.hold_id).update(timeout_at=timezone.now())
    assert ledger_expire_pending() == 1

    topup = send(topup_id=topup.pk)

    assert operator_server.received == []
    assert topup.status == TopUpStatus.FAILED and "released before" in topup.last_error
    assert resolutions(topup) == [TransferFlag.VOID_PENDING]
    assert available(card_holder) == START
    assert settled == [(topup.pk, "failed")]
    ledger_is_consistent()


def test_an_operator_that_rejects_our_signature_is_asked_again_not_taken_as_a_refusal(
    card_holder, operator, operator_server
):
    operator_server.secret = "a key the operator has and we do not"
    topup = topup_for(card_holder, operator.partner)

    topup = send(topup_id=topup.pk)

    assert topup.status == TopUpStatus.QUEUED and "HTTP 401" in topup.last_error
    assert resolutions(topup) == []


def test_an_operator_without_endpoint_at_send_time_is_retried_until_fixed(
    card_holder, operator, operator_server, ledger_is_consistent
):
    topup = topup_for(card_holder, operator.partner)
    url = operator.partner.endpoint_url
    operator.partner.endpoint_url = ""
    operator.partner.save(update_fields=["endpoint_url"])

    topup = send(topup_id=topup.pk)
    assert topup.status == TopUpStatus.QUEUED and "not configured" in topup.last_error

    operator.partner.endpoint_url = url
    operator.partner.save(update_fields=["endpoint_url"])
    sweep(now=topup.next_attempt_at)

    topup.refresh_from_db()
    assert topup.status == TopUpStatus.CONFIRMED and len(operator_server.received) == 1
    ledger_is_consistent()


def test_nothing_is_sent_when_the_callers_transaction_rolls_back(
    card_holder, operator, operator_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                topup_for(card_holder, operator.partner)
                raise RuntimeError("the redemption failed after the request")

    assert callbacks == [] and operator_server.received == []
    assert not TopUp.objects.exists() and available(card_holder) == START
