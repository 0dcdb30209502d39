"""A survey project's live leaderboards (observers by species, by sightings), registered by
biodiversity through the core's registry, on both board backends: published with their
definitions, moved by sightings and identifications as they happen, an erased observer
leaves them, and `manage.py leaderboards_rebuild` rebuilds them from the sightings equal to
the live ones (which are the project's own per-observer statistics)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from biodiversity.projects.stats import project_observer_counts
from carbon.leaderboards import engine, registry
from carbon.services.people import user_erase
from tests.biodiversity.conftest import post_sighting
from tests.carbon.api_helpers import client_for
from tests.carbon.leaderboard_helpers import board_backend, reading

__all__ = ["board_backend"]

pytestmark = pytest.mark.django_db


def keys(survey) -> dict[str, str]:
    return {
        kind: f"biodiversity.project_{kind}.{survey.pk}.all" for kind in ("species", "sightings")
    }


def stats_reading(survey, kind: str) -> list[tuple[int, int]]:
    """(score, observer id) rows from the project's statistics, in the board's order."""
    rows = [(r[kind], r["observer"]) for r in project_observer_counts(project=survey) if r[kind]]
    return sorted(rows, reverse=True)


def board_rows(key: str) -> list[tuple[int, int]]:
    board = registry.board(key)
    return [(r.score, int(r.member)) for r in engine.board_top(board=board, limit=100)]


def identify(user, sighting_id, taxon):
    response = client_for(user).post(
        f"/api/v1/biodiversity/sightings/{sighting_id}/identifications",
        {"taxon": taxon.pk},
        format="json",
    )
    assert response.status_code in (200, 201), response.content


def test_project_boards_are_published_live_and_rebuild_equal(
    board_backend,
    taxa,
    survey,
    observer,
    observer_api,
    expert,
    django_capture_on_commit_callbacks,
):
    board = keys(survey)
    listed = {b["key"]: b for b in client_for(observer).get("/api/v1/leaderboards").json()}
    assert set(board.values()) <= set(listed)
    species = listed[board["species"]]
    assert species["definition"]["window"]["code"] == "all"
    assert species["definition"]["members"] == "resident"
    assert species["definition"]["unit"] == "species"
    assert survey.name in species["title"]
    assert registry.board(f"biodiversity.project_species.{survey.pk}.week") is None

    with django_capture_on_commit_callbacks(execute=True):
        made = []
        for seed, (name, days) in enumerate(
            [("Ardea cinerea", 1), ("Egretta garzetta", 3), ("Ardea cinerea", 4)]
        ):
            response = post_sighting(
                observer_api,
                taxa[name],
                observed_at=(timezone.now() - timedelta(days=days)).isoformat(),
                seed=seed + 40,
            )
            assert response.status_code == 201, response.content
            made.append(response.json()["id"])
        expert_sighting = post_sighting(client_for(expert), taxa["Egretta garzetta"], seed=60)
        assert expert_sighting.status_code == 201
    # Sightings count at once; no species yet (nothing is research grade).
    assert board_rows(board["sightings"]) == [(3, observer.pk), (1, expert.pk)]
    assert board_rows(board["sightings"]) == stats_reading(survey, "sightings")
    assert board_rows(board["species"]) == []

    # The expert agrees on two of the observer's herons: one species, seen twice.
    with django_capture_on_commit_callbacks(execute=True):
        identify(expert, made[0], taxa["Ardea cinerea"])
        identify(expert, made[2], taxa["Ardea cinerea"])
    assert board_rows(board["species"]) == [(1, observer.pk)]
    assert board_rows(board["species"]) == stats_reading(survey, "species")
    me = observer_api.get(f"/api/v1/leaderboards/{board['sightings']}?around=me").json()["me"]
    assert me == {"rank": 1, "score": 3}

    live = {key: reading(key) for key in board.values()}
    call_command("leaderboards_rebuild", board["species"])
    call_command("leaderboards_rebuild")
    assert {key: reading(key) for key in board.values()} == live

    # An erased observer's sightings stay anonymous: their rows leave both boards.
    with django_capture_on_commit_callbacks(execute=True):
        user_erase(user=observer)
    assert board_rows(board["sightings"]) == [(1, expert.pk)]
    assert board_rows(board["species"]) == []
    live = {key: reading(key) for key in board.values()}
    call_command("leaderboards_rebuild")
    assert {key: reading(key) for key in board.values()} == live
