"""A campaign's live leaderboard, registered by zerowaste through the core's registry (the
core never imports zerowaste), on both board backends: its definition is published, votes
cast through the API move it at once, the anomaly review's reversals take votes back, and
`manage.py leaderboards_rebuild` rebuilds it from the votes equal to the live one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone, translation

from carbon.leaderboards import registry
from tests.carbon.api_helpers import client_for, new_key
from tests.carbon.factories import UserFactory
from tests.carbon.leaderboard_helpers import board_backend, reading
from tests.zerowaste.factories import verified
from tests.zerowaste.test_anomalies import add_votes
from zerowaste.campaigns.anomalies import votes_review
from zerowaste.campaigns.tally import campaign_tally

__all__ = ["board_backend"]

pytestmark = pytest.mark.django_db


def board_key(campaign) -> str:
    return f"zerowaste.campaign_votes.{campaign.pk}.all"


def vote(client, campaign, candidate):
    response = client.post(
        f"/api/v1/zerowaste/campaigns/{campaign.pk}/votes",
        {"candidate": candidate.pk, "idempotency_key": new_key()},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response


def tally_reading(campaign) -> list[tuple[int, str]]:
    """(votes, cell name) of the campaign's counted tally, as the board orders it (in English:
    the cell's English name)."""
    tally = campaign_tally(campaign_id=campaign.pk)
    cells = [(c.pk, c.cell) for c in campaign.candidates.select_related("cell")]
    names = {pk: cell.name_en or cell.name for pk, cell in cells}
    return [(n, names[pk]) for pk, n in sorted(tally.items(), key=lambda r: (-r[1], -r[0])) if n]


def test_a_campaign_board_is_published_with_its_definition(board_backend, campaign):
    campaign, _candidates = campaign
    response = client_for(UserFactory()).get("/api/v1/leaderboards")
    assert response.status_code == 200
    mine = [b for b in response.json() if b["key"].startswith("zerowaste.campaign_votes.")]
    # All time only: a campaign has its own voting period.
    assert [b["key"] for b in mine] == [board_key(campaign)]
    definition = mine[0]["definition"]
    assert definition["unit"] == "votes" and definition["members"] == "candidate"
    assert definition["window"]["code"] == "all"
    assert "anomaly review" in definition["counts"]
    assert campaign.title_en in mine[0]["title"]
    assert registry.board(f"zerowaste.campaign_votes.{campaign.pk}.week") is None
    assert registry.board("zerowaste.campaign_votes.999999.all") is None
    missing = client_for(UserFactory()).get("/api/v1/leaderboards/zerowaste.campaign_votes.0.all")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_board"


def test_votes_move_the_board_live_and_a_rebuild_equals_it(
    board_backend, campaign, django_capture_on_commit_callbacks
):
    campaign, candidates = campaign
    voters = [client_for(verified(UserFactory())) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        for client in voters:
            vote(client, campaign, candidates[2])
        vote(voters[0], campaign, candidates[0])
    live = reading(board_key(campaign))
    assert [(rank, score) for rank, score, _name in live] == [(1, 3), (2, 1)]
    assert [(score, name) for _rank, score, name in live] == tally_reading(campaign)
    response = voters[0].get(f"/api/v1/leaderboards/{board_key(campaign)}?limit=5")
    assert [(r["rank"], r["score"], r["who"]["name"]) for r in response.json()["rows"]] == live
    assert response.json()["rows"][0]["who"]["district"] == candidates[2].cell.district.name

    call_command("leaderboards_rebuild", board_key(campaign))
    assert reading(board_key(campaign)) == live
    call_command("leaderboards_rebuild")
    assert reading(board_key(campaign)) == live


def test_reversed_votes_leave_the_live_board_as_they_leave_the_tally(
    board_backend, campaign, django_capture_on_commit_callbacks
):
    campaign, candidates = campaign
    start = timezone.now() - timedelta(hours=20)
    for i, c in enumerate(candidates[:3]):
        add_votes(campaign, c, at=start + timedelta(minutes=i * 7), n=10, spacing_s=3000)
    # A farm of new accounts voting for one candidate within minutes: the review reverses it.
    add_votes(campaign, candidates[1], at=start + timedelta(hours=5), n=40, spacing_s=7, age_days=2)
    # Those votes were written around the service (no signal): the rebuild brings the board
    # to the truth, as it would after any repair.
    call_command("leaderboards_rebuild", board_key(campaign))
    assert reading(board_key(campaign))[0][1] == 50

    with django_capture_on_commit_callbacks(execute=True):
        assert votes_review(campaign_id=campaign.pk)
    live = reading(board_key(campaign))
    assert [score for _rank, score, _name in live] == [10, 10, 10]
    assert [(score, name) for _rank, score, name in live] == tally_reading(campaign)
    call_command("leaderboards_rebuild", board_key(campaign))
    assert reading(board_key(campaign)) == live


def test_a_renamed_campaign_shows_its_new_title_on_its_board(campaign):
    # The board source keeps a campaign's titles a little while (a vote's board update must
    # not read the campaign); saving the campaign drops them.
    campaign, _candidates = campaign
    with translation.override("en"):
        assert campaign.title_en in str(registry.board(board_key(campaign)).source.title)

        campaign.title_en = "Renamed awards"
        campaign.save()

        assert "Renamed awards" in str(registry.board(board_key(campaign)).source.title)
    campaign.votes.all().delete()
    campaign.delete()
    assert registry.board(board_key(campaign)) is None


def test_a_votes_board_update_does_not_read_the_campaign(
    board_backend, voter, campaign, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from zerowaste.campaigns.votes import vote_cast

    campaign, candidates = campaign
    registry.board(board_key(campaign))  # the campaign's titles read once, as any board read

    with django_capture_on_commit_callbacks() as after_commit:
        vote_cast(
            user=voter, campaign_id=campaign.pk, candidate_id=candidates[0].pk, idempotency_key="a"
        )
    with CaptureQueriesContext(connection) as statements:
        for callback in after_commit:
            callback()

    assert after_commit
    assert not [q["sql"] for q in statements if "zerowaste_campaign" in q["sql"]]
    assert reading(board_key(campaign))[0][1] == 1
