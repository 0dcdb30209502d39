"""The anomaly review: a burst from new accounts, a cluster of new accounts voting alike and
serial voting are reversed with an audit record, the public count of removed votes shows it,
ordinary voting is left alone, and the results are published from the counted votes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.carbon.api_helpers import assert_error
from tests.carbon.factories import UserFactory
from tests.zerowaste.factories import campaign_with_candidates, jury
from zerowaste.campaigns.anomalies import votes_review
from zerowaste.campaigns.models import Vote, VoteReversal
from zerowaste.campaigns.results import campaign_results_publish
from zerowaste.campaigns.tally import campaign_tally
from zerowaste.tasks import review_votes

pytestmark = pytest.mark.django_db


def add_votes(campaign, candidate, *, at, n, spacing_s=60.0, age_days=400, joined=None, jitter=0):
    """n votes for `candidate` by n new voters from `at`, one every `spacing_s` seconds."""
    voters = UserFactory.create_batch(n)
    rows = []
    for i, voter in enumerate(voters):
        when = at + timedelta(seconds=i * spacing_s + (i % 3) * jitter)
        rows.append(
            Vote(
                campaign=campaign,
                candidate=candidate,
                voter=voter,
                day=timezone.localdate(when),
                slot=1,
                slots=3,
                created_at=when,
                account_age_days=age_days,
                voter_joined_on=joined or (timezone.localdate(when) - timedelta(days=age_days)),
            )
        )
    return Vote.objects.bulk_create(rows)


@pytest.fixture
def voting():
    campaign, candidates = campaign_with_candidates(3)
    start = timezone.now() - timedelta(hours=20)
    # A day of ordinary voting: long-standing accounts, a few votes an hour for each.
    for i, c in enumerate(candidates):
        add_votes(campaign, c, at=start + timedelta(minutes=i * 7), n=20, spacing_s=3000)
    return campaign, candidates, start


def test_ordinary_voting_is_left_alone(voting):
    campaign, _, _ = voting
    assert votes_review(campaign_id=campaign.pk) == []
    assert Vote.objects.counted().count() == 60


def test_a_burst_from_new_accounts_is_reversed_and_old_accounts_in_it_stay(voting):
    campaign, candidates, start = voting
    at = start + timedelta(hours=5)
    farm = add_votes(campaign, candidates[1], at=at, n=40, spacing_s=7, age_days=2)
    assembly = add_votes(campaign, candidates[1], at=at + timedelta(seconds=3), n=5, spacing_s=50)

    found = votes_review(campaign_id=campaign.pk)

    bursts = [r for r in found if r.rule == VoteReversal.Rule.BURST]
    assert len(bursts) == 1 and bursts[0].votes_reversed == 40
    assert bursts[0].details["candidate"] == candidates[1].pk
    assert set(Vote.objects.filter(reversal__isnull=False).values_list("pk", flat=True)) == {
        v.pk for v in farm
    }
    assert Vote.objects.counted().filter(pk__in=[v.pk for v in assembly]).count() == 5
    assert campaign_tally(campaign_id=campaign.pk)[candidates[1].pk] == 25
    # Reviewing again finds nothing new: reversed votes are not looked at twice.
    assert votes_review(campaign_id=campaign.pk) == []


def test_new_accounts_from_one_day_voting_alike_are_a_cluster(voting, api):
    campaign, candidates, start = voting
    joined = timezone.localdate() - timedelta(days=3)
    # Ten accounts made the same day each vote for candidates 0 and 2, spread over hours
    # (no burst, no rhythm): only their sameness gives them away.
    for i in range(10):
        voter = UserFactory()
        for j, c in enumerate((candidates[0], candidates[2])):
            when = start + timedelta(minutes=37 * i + 11 * j)
            Vote.objects.create(
                campaign=campaign,
                candidate=c,
                voter=voter,
                day=timezone.localdate(when),
                slot=j + 1,
                slots=3,
                created_at=when,
                account_age_days=3,
                voter_joined_on=joined,
            )

    found = votes_review(campaign_id=campaign.pk)

    assert [r.rule for r in found] == [VoteReversal.Rule.CLUSTER]
    assert found[0].votes_reversed == 20
    assert found[0].details["accounts"] == 10
    body = api.get(f"/api/v1/zerowaste/campaigns/{campaign.pk}").json()
    assert body["removed_votes"] == 20


def test_serial_voting_at_a_machine_rhythm_is_reversed(voting):
    campaign, candidates, start = voting
    script = add_votes(campaign, candidates[0], at=start + timedelta(hours=9), n=12, spacing_s=2.0)
    # People clicking in a hurry are not a steady rhythm.
    add_votes(
        campaign, candidates[2], at=start + timedelta(hours=12), n=12, spacing_s=1.0, jitter=1
    )

    found = votes_review(campaign_id=campaign.pk)

    assert [r.rule for r in found] == [VoteReversal.Rule.SERIAL]
    assert set(found[0].votes.values_list("pk", flat=True)) == {v.pk for v in script}


def test_the_periodic_job_reviews_open_campaigns(voting):
    campaign, candidates, start = voting
    add_votes(campaign, candidates[0], at=start + timedelta(hours=2), n=12, spacing_s=2.0)
    assert review_votes() == 1
    assert VoteReversal.objects.get().campaign_id == campaign.pk


def test_results_weigh_public_and_jury_after_the_close(voting, api):
    campaign, candidates, _ = voting
    add_votes(campaign, candidates[2], at=timezone.now() - timedelta(hours=1), n=20, spacing_s=400)
    jury(candidates, ["90", "60", "50"])
    with pytest.raises(Exception) as early:
        campaign_results_publish(campaign_id=campaign.pk)
    assert early.value.code.value == "campaign_not_closed"

    campaign.voting_closes_at = timezone.now() - timedelta(minutes=1)
    campaign.save()
    campaign_results_publish(campaign_id=campaign.pk)

    body = api.get(f"/api/v1/zerowaste/campaigns/{campaign.pk}").json()
    assert body["phase"] == "published"
    ranked = [(c["id"], c["votes"], c["final_score"], c["rank"]) for c in body["candidates"]]
    # 30 % public (votes / most votes x 100) + 70 % jury.
    assert ranked == [
        (candidates[0].pk, 20, "78.00", 1),  # 30 x 20/40 + 70 x 0.9 = 15 + 63
        (candidates[2].pk, 40, "65.00", 2),  # 30 + 35
        (candidates[1].pk, 20, "57.00", 3),  # 15 + 42
    ]
    assert_error(
        api.post(f"/api/v1/zerowaste/campaigns/{campaign.pk}/votes", {}, format="json"),
        401,
        "not_authenticated",
    )
