"""Helpers for the leaderboard tests: a backend per test (database, or Redis when REDIS_URL
is set), awards that commit their on-commit feeds, and a board's full reading."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from carbon.leaderboards import engine, registry
from carbon.leaderboards.backends import get_backend, reset_backends
from carbon.services.ledger import ledger_award


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def board_backend(request, settings):
    settings.LEADERBOARD_BACKEND = request.param
    reset_backends()
    engine.forget_process_state()
    backend = get_backend()
    if hasattr(backend, "flush_all"):
        backend.flush_all()
    yield backend
    if hasattr(backend, "flush_all"):
        backend.flush_all()
    reset_backends()
    engine.forget_process_state()


def award(user, grams: int, *, category: str = "green_travel"):
    return ledger_award(
        user=user,
        amount_g=grams,
        category=category,
        idempotency_key=str(uuid.uuid4()),
        description="test award",
        expires_at=timezone.now() + timedelta(days=365),
    )


def reading(key: str, limit: int = 1000) -> list[tuple[int, int, str | None]]:
    """(rank, score, name) of every row of a board."""
    board = registry.board(key)
    return [(r.rank, r.score, r.who.name) for r in engine.board_top(board=board, limit=limit)]


def every_board() -> dict[str, list]:
    return {b.key: reading(b.key) for b in registry.boards()}
