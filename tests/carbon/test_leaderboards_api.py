"""GET /api/v1/leaderboards and /leaderboards/{key}: the boards with their definitions, top N,
around me, and the refusals (catalogue codes, in the request's language)."""

from __future__ import annotations

import pytest

from tests.carbon.api_helpers import assert_error, client_for
from tests.carbon.factories import CommunityFactory, UserFactory
from tests.carbon.leaderboard_helpers import award, board_backend

__all__ = ["board_backend"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def ranked(board_backend, django_capture_on_commit_callbacks):
    community = CommunityFactory(name="Lakeside")
    users = [
        UserFactory(display_name=f"R{i}", community=community, district=community.district)
        for i in range(7)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        for i, user in enumerate(users):
            award(user, 100 * (i + 1))  # R6 first (700) ... R0 last (100)
    return users


def test_the_list_gives_each_board_its_definition_and_socket(ranked):
    response = client_for(ranked[0]).get("/api/v1/leaderboards")
    assert response.status_code == 200
    boards = {b["key"]: b for b in response.json()}
    assert {
        "residents.grams.all",
        "residents.grams.7d",
        "communities.grams.month",
        "districts.grams_per_resident.week",
    } <= set(boards)
    board = boards["residents.grams.30d"]
    assert board["socket"] == "/ws/v1/leaderboards/residents.grams.30d"
    definition = board["definition"]
    assert definition["unit"] == "g" and definition["members"] == "resident"
    assert "reversed" in definition["counts"]
    assert definition["window"]["code"] == "30d"
    assert "share a rank" in definition["ties"]
    assert boards["communities.grams_per_resident.all"]["definition"]["derived_from"] == (
        "communities.grams"
    )


def test_top_n_and_around_me(ranked):
    api = client_for(ranked[2])
    body = api.get("/api/v1/leaderboards/residents.grams.all?limit=3").json()
    assert [(r["rank"], r["score"], r["who"]["name"]) for r in body["rows"]] == [
        (1, 700, "R6"),
        (2, 600, "R5"),
        (3, 500, "R4"),
    ]
    assert body["rows"][0]["who"] == {
        "name": "R6",
        "community": "Lakeside",
        "district": body["rows"][0]["who"]["district"],
    }
    assert body["me"] is None and isinstance(body["seq"], int)

    body = api.get("/api/v1/leaderboards/residents.grams.all?around=me&limit=3").json()
    assert body["me"] == {"rank": 5, "score": 300}
    assert [r["rank"] for r in body["rows"]] == [4, 5, 6]

    body = api.get("/api/v1/leaderboards/communities.grams.week?around=me&limit=5").json()
    assert body["me"] == {"rank": 1, "score": 2800}


def test_refusals_are_catalogue_errors(ranked):
    api = client_for(ranked[0])
    error = assert_error(api.get("/api/v1/leaderboards/nope.board.all"), 404, "unknown_board")
    assert error["details"] == {"board": "nope.board.all"}
    assert_error(api.get("/api/v1/leaderboards/residents.grams.year"), 404, "unknown_board")
    for query in ("limit=0", "limit=101", "limit=x", "around=you"):
        assert_error(api.get(f"/api/v1/leaderboards/residents.grams.all?{query}"), 400, "invalid")
    from rest_framework.test import APIClient

    assert_error(APIClient().get("/api/v1/leaderboards"), 401, "not_authenticated")


def test_unknown_board_in_chinese(ranked):
    response = client_for(ranked[0]).get(
        "/api/v1/leaderboards/nope.all", HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    error = assert_error(response, 404, "unknown_board")
    assert "排行榜" in error["message"]
