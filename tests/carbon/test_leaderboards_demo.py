"""The demo city: seed_demo --size grows it set-based with every ledger invariant kept, a
second run adds nothing, the boards are built; demo_activity credits through the real path."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from carbon.models import Transfer, User
from tests.carbon.leaderboard_helpers import board_backend, every_board

__all__ = ["board_backend"]

pytestmark = pytest.mark.django_db


def test_seed_demo_grows_a_consistent_city_once(
    board_backend, ledger_is_consistent, django_capture_on_commit_callbacks
):
    out = io.StringIO()
    call_command("seed_demo", size=40, stdout=out)
    assert "40/40 residents" in out.getvalue()
    residents = User.objects.filter(email__startswith="city-")
    assert residents.count() == 40
    assert residents.values("community").distinct().count() > 3
    transfers = Transfer.objects.count()
    assert transfers > 40 * 5
    ledger_is_consistent()

    live = every_board()
    assert len(live["residents.grams.all"]) >= 30
    assert live["districts.grams.30d"] and live["communities.grams_per_resident.week"]

    call_command("seed_demo", size=40, stdout=io.StringIO())
    assert Transfer.objects.count() == transfers
    again = every_board()
    assert {k: v for k, v in again.items() if v != live[k]} == {}
    # The seeded history is the ledger's: a rebuild finds the same boards.
    call_command("leaderboards_rebuild", verbosity=0)
    assert every_board() == live

    # Live activity through the claim path moves the boards and keeps the ledger whole.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo_activity", rate=1000, count=6, seed=3, stdout=io.StringIO())
    assert Transfer.objects.count() > transfers
    assert every_board() != live
    moved = every_board()
    call_command("leaderboards_rebuild", verbosity=0)
    assert every_board() == moved
    ledger_is_consistent()
