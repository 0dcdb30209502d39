"""Fixtures of the top-up tests: the transit operator as a real local HTTP server (it checks
our signature and acts once per request id), a resident with a linked card and points, Celery
running its tasks in the caller (as a worker would, at commit), and the settled signals."""

from __future__ import annotations

import pytest
from celery import current_app

from carbon.services.partners import partner_create
from rewards.topups.models import TopUp
from rewards.topups.signals import topup_settled
from tests.carbon.factories import UserFactory
from tests.partner_server import partner_server
from tests.rewards.topups.factories import linked_card, points


@pytest.fixture(autouse=True)
def _quick_network(settings):
    # A timeout is tried, not waited for.
    settings.PARTNER_OUTBOUND_TIMEOUT_SECONDS = 0.5


@pytest.fixture(autouse=True)
def _tasks_run_in_process():
    """The send scheduled at commit runs right there, as a worker would run it."""
    conf = current_app.conf
    before = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = before


@pytest.fixture
def operator(db):
    """The transit operator's partner record and the credential we sign with."""
    return partner_create(name="Wuhan Metro", kind="transit_operator")


def confirm(request):
    return 200, {"status": "confirmed", "operator_ref": f"WM-{request.request_id[:8]}"}


@pytest.fixture
def operator_server(operator):
    """The operator's top-up API on a local port; it confirms every top-up unless a test
    scripts another answer (server.handler, server.delay)."""
    with partner_server(operator.secret, handler=confirm) as server:
        operator.partner.endpoint_url = server.url + "/api"
        operator.partner.save(update_fields=["endpoint_url"])
        yield server


@pytest.fixture
def card_holder(db):
    """A resident with a linked card and 5000 g to spend."""
    user = UserFactory()
    linked_card(user)
    points(user)
    return user


@pytest.fixture
def settled():
    """Every topup_settled signal, as (top-up id, outcome)."""
    seen: list[tuple[int, str]] = []

    def receiver(sender, topup, outcome, **kwargs):
        assert sender is TopUp
        seen.append((topup.pk, outcome))

    topup_settled.connect(receiver, weak=False)
    yield seen
    topup_settled.disconnect(receiver)
