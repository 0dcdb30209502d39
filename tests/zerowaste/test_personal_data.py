"""Zero waste in the personal-data registry: the export shows a resident's votes, objections
and the cells they operate; erasure unlinks them, the votes stay counted anonymously, the
objection still counts without its text, and the cell stays without its operator."""

from __future__ import annotations

import pytest

from carbon.services.people import user_erase, user_export
from tests.carbon.api_helpers import client_for, new_key
from tests.zerowaste.factories import CellFactory
from zerowaste.campaigns.models import Vote
from zerowaste.campaigns.tally import campaign_tally
from zerowaste.campaigns.votes import vote_cast
from zerowaste.cells.models import Cell, CellKind, CellOperator, CellTransition, Objection
from zerowaste.cells.objections import objection_file

pytestmark = pytest.mark.django_db


def test_export_and_erasure(voter, campaign):
    campaign, candidates = campaign
    vote_cast(
        user=voter, campaign_id=campaign.pk, candidate_id=candidates[0].pk, idempotency_key="v"
    )
    notice = CellFactory(in_notice=True)
    objection_file(
        user=voter, cell_id=notice.pk, reason="My neighbour X dumps bags.", idempotency_key="o"
    )
    applied = client_for(voter).post(
        "/api/v1/zerowaste/my/cells",
        {
            "idempotency_key": new_key(),
            "kind": CellKind.FAMILY,
            "name": "王家",
            "district": notice.district.code,
            "longitude": 114.3,
            "latitude": 30.6,
            "contact_name": "Wang Fang",
            "contact_phone": "13800000000",
        },
        format="json",
    )
    assert applied.status_code == 201, applied.content

    exported = user_export(user=voter)
    assert exported["zerowaste_campaign_votes"][0]["candidate"] == candidates[0].pk
    assert exported["zerowaste_objections"][0]["reason"] == "My neighbour X dumps bags."
    assert exported["zerowaste_cells"]["operated"][0]["name"] == "王家"

    user_erase(user=voter)

    vote = Vote.objects.get()
    assert vote.voter is None and vote.idempotency_key == ""
    assert campaign_tally(campaign_id=campaign.pk)[candidates[0].pk] == 1  # still counted
    objection = Objection.objects.get()
    assert objection.user is None and objection.reason == ""
    assert notice.objections.count() == 1
    family = Cell.objects.get(name="王家")
    assert not CellOperator.objects.exists()
    assert (family.contact_name, family.contact_phone) == ("", "")
    assert CellTransition.objects.get(cell=family).actor is None
