"""Fixtures of the payment tests: Celery running tasks in the caller. The local Stripe server
(`stripe_server`) is in tests/conftest.py, as the admin's permission test uses it too; acting
as the payer, as Stripe's webhook delivery and as the outbox worker is in flows.py."""

from __future__ import annotations

import pytest
from celery import current_app


@pytest.fixture(autouse=True)
def _tasks_run_in_process():
    conf = current_app.conf
    before = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = before
