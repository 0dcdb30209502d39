"""Identifications, the community taxon (two or more, over 2/3 agreeing), institution
verdicts, quality grades and moderation flags, through the API."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from biodiversity.sightings.flags import flag_resolve
from biodiversity.sightings.grading import community_taxon
from biodiversity.sightings.models import Flag, Sighting
from tests.biodiversity.conftest import post_sighting
from tests.carbon.api_helpers import assert_error, client_for
from tests.carbon.factories import UserFactory

pytestmark = pytest.mark.django_db


def identify(user, sighting_id, taxon):
    return client_for(user).post(
        f"/api/v1/biodiversity/sightings/{sighting_id}/identifications",
        {"taxon": taxon.pk},
        format="json",
    )


def test_community_taxon_needs_two_and_more_than_two_thirds(taxa):
    heron, egret, alba = taxa["Ardea cinerea"], taxa["Egretta garzetta"], taxa["Ardea alba"]
    assert community_taxon(taxa=[heron]) is None
    assert community_taxon(taxa=[heron, heron]) == heron
    # 2 of 3 is not more than 2/3: only what all three share (the family) is agreed.
    assert community_taxon(taxa=[heron, heron, egret]) == taxa["Ardeidae"]
    assert community_taxon(taxa=[heron, heron, heron, egret]) == heron
    # Two Ardea species: the genus is the finest agreed taxon.
    assert community_taxon(taxa=[heron, alba]) == taxa["Ardea"]


def test_agreeing_identifications_make_research_grade_and_a_change_of_mind_replaces(
    observer_api, taxa
):
    body = post_sighting(observer_api, taxa["Ardea cinerea"]).json()
    assert body["quality_grade"] == "needs_id"
    helper = UserFactory()
    agreed = identify(helper, body["id"], taxa["Ardea cinerea"])
    assert agreed.status_code == 201, agreed.content
    assert agreed.json()["quality_grade"] == "research"
    assert agreed.json()["community_taxon"]["scientific_name"] == "Ardea cinerea"
    # The helper changes their mind: their new identification replaces the old one.
    changed = identify(helper, body["id"], taxa["Ardea alba"]).json()
    assert [i["current"] for i in changed["identifications"]] == [True, False, True]
    assert changed["community_taxon"]["scientific_name"] == "Ardea"
    assert changed["quality_grade"] == "needs_id"


def test_identifying_needs_a_known_taxon_and_a_visible_sighting(observer_api, taxa):
    body = post_sighting(observer_api, taxa["Ardea cinerea"]).json()
    stranger = UserFactory()
    response = client_for(stranger).post(
        f"/api/v1/biodiversity/sightings/{body['id']}/identifications",
        {"taxon": 424242},
        format="json",
    )
    assert_error(response, 400, "unknown_taxon")
    assert_error(
        APIClient().post(
            f"/api/v1/biodiversity/sightings/{body['id']}/identifications",
            {"taxon": taxa["Ardea alba"].pk},
            format="json",
        ),
        401,
        "not_authenticated",
    )
    # Hidden by moderation: to anyone but the observer it does not exist.
    sighting = Sighting.objects.get(pk=body["id"])
    flag = Flag.objects.create(sighting=sighting, user=stranger, reason="spam")
    flag_resolve(flag_id=flag.pk, moderator=UserFactory(), uphold=True)
    assert_error(identify(stranger, body["id"], taxa["Ardea alba"]), 404, "not_found")
    assert_error(APIClient().get(f"/api/v1/biodiversity/sightings/{body['id']}"), 404, "not_found")
    assert observer_api.get(f"/api/v1/biodiversity/sightings/{body['id']}").status_code == 200
    assert sighting.identifications.count() == 1


def test_only_institution_members_record_verdicts(observer_api, taxa, expert):
    body = post_sighting(observer_api, taxa["Ardea cinerea"]).json()
    url = f"/api/v1/biodiversity/sightings/{body['id']}/verdicts"
    refused = client_for(UserFactory()).post(url, {"outcome": "accepted"}, format="json")
    assert_error(refused, 403, "not_institution_member")
    assert Sighting.objects.get(pk=body["id"]).verdicts.count() == 0
    given = client_for(expert).post(
        url,
        {"outcome": "accepted", "new_district_record": True, "candidate_new_species": False},
        format="json",
    )
    assert given.status_code == 201, given.content
    verdict = given.json()["verdicts"][0]
    assert verdict["outcome"] == "accepted" and verdict["institution"]
    assert given.json()["new_district_record"] is True
    # "Not accepted" makes it casual whatever the community says.
    identify(UserFactory(), body["id"], taxa["Ardea cinerea"])
    rejected = client_for(expert).post(url, {"outcome": "not_accepted"}, format="json")
    assert rejected.json()["quality_grade"] == "casual"


def test_a_flag_goes_to_moderation_and_blocks_research_grade_until_dismissed(observer_api, taxa):
    body = post_sighting(observer_api, taxa["Ardea cinerea"]).json()
    identify(UserFactory(), body["id"], taxa["Ardea cinerea"])
    flagger = client_for(UserFactory())
    url = f"/api/v1/biodiversity/sightings/{body['id']}/flags"
    raised = flagger.post(url, {"reason": "copyright", "note": "my photo"}, format="json")
    assert raised.status_code == 201, raised.content
    assert raised.json()["status"] == "open"
    assert_error(
        flagger.post(url, {"reason": "copyright"}, format="json"), 409, "flag_already_open"
    )
    assert_error(flagger.post(url, {"reason": "duplicate_photo"}, format="json"), 400, "invalid")
    sighting = Sighting.objects.get(pk=body["id"])
    assert sighting.quality_grade == "needs_id"
    flag_resolve(flag_id=raised.json()["id"], moderator=UserFactory(), uphold=False)
    sighting.refresh_from_db()
    assert sighting.quality_grade == "research" and not sighting.hidden
