"""The database backend's rank aid under concurrent writers, on PostgreSQL: threads applying
batches over the same members (their band changes crossing) neither deadlock nor drift, so
the band counts equal a recount of the rows and every rank equals a plain sort; two first
writes of one member at once both land."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import date

import pytest
from django.db import connection

from carbon.leaderboards.backends import ScoreChange
from carbon.leaderboards.backends.database import DatabaseBackend
from carbon.leaderboards.bands import score_band
from carbon.leaderboards.models import BoardBand, BoardScore
from tests.carbon.test_ledger_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SERIES = "testapp.concurrent"


def test_concurrent_batches_keep_band_counts_exact():
    backend = DatabaseBackend()
    members = [f"{i:012d}" for i in range(40)]

    def work(i: int) -> None:
        rng = random.Random(i)
        for _ in range(25):
            batch = [
                ScoreChange(SERIES, m, date.today(), rng.choice([1, 60, 129, 5000, -60]), ("all",))
                for m in rng.sample(members, 6)
            ]
            backend.apply(changes=batch, starts={})
        if i % 2:
            backend.put(series=SERIES, bucket="all", scores={members[i]: 777, members[i + 1]: 0})

    results = run_together(8, work)
    assert not [r for r in results if isinstance(r, BaseException)], results

    rows = dict(BoardScore.objects.filter(series=SERIES).values_list("member", "score"))
    assert 0 not in rows.values()
    recount = Counter(score_band(s) for s in rows.values())
    kept = {
        band: n
        for band, n in BoardBand.objects.filter(series=SERIES).values_list("band", "count")
        if n
    }
    assert kept == dict(recount)
    order = sorted(rows.items(), key=lambda r: (r[1], r[0]), reverse=True)
    for position, (member, _score) in enumerate(order):
        assert backend.position(series=SERIES, bucket="all", member=member) == position
    assert connection.vendor == "postgresql"


def test_first_writes_of_one_member_at_once_both_land():
    """Two connections making the first write of the same member on a board at once (its
    score rows and its band rows created by both): both increments land, no unique
    violation, no lost update, one band row counting the member once. The board exists
    (another member and its rolling marker are there: creating a series' first marker
    would serialise the two writers), so the two really meet on the member's first
    insert; many rounds, a new member each."""
    backend = DatabaseBackend()
    rounds, day = 40, date(2026, 3, 2)
    backend.apply(
        changes=[ScoreChange(SERIES, f"{0:012d}", day, 5000, ("all",))], starts={"r7": day}
    )
    gate = threading.Barrier(2)

    def work(i: int) -> None:
        try:
            for r in range(1, rounds + 1):
                change = ScoreChange(SERIES, f"{r:012d}", day, 10 + i, ("all",))
                gate.wait(timeout=30)
                backend.apply(changes=[change], starts={"r7": day})
        except BaseException:
            gate.abort()  # the other thread stops too, instead of waiting out the gate
            raise

    results = run_together(2, work)
    assert not [r for r in results if isinstance(r, BaseException)], results

    for bucket in ("all", "r7"):
        scores = backend.scores(series=SERIES, bucket=bucket)
        assert scores == {f"{0:012d}": 5000} | {f"{r:012d}": 21 for r in range(1, rounds + 1)}
        bands = BoardBand.objects.filter(series=SERIES, bucket=bucket).exclude(count=0)
        assert dict(bands.values_list("band", "count")) == {
            score_band(5000): 1,
            score_band(21): rounds,
        }
