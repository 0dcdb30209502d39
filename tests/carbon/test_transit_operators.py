"""Several transit operators (issue 12): an operator's taps count only at the stations of the
lines it runs, whether or not the tap names a line."""

# The transit fixtures live in test_transit_api and are imported here by name.
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point

from carbon.adapters.transit.models import LineStop, Station, Tap, TransitLine, Trip
from carbon.models import Claim
from carbon.services.partners import partner_create
from tests.carbon.transit_samples import ago, linked, pushed, tap

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_operator(db):
    return partner_create(name="Hankou Light Rail", kind="transit_operator")


def codes(body) -> dict[str, str]:
    return {r["record_id"]: r.get("code", r["status"]) for r in body["rows"]}


def test_another_operators_taps_at_our_stations_are_row_errors_and_credit_nothing(
    transit, operator, second_operator, resident, ledger_is_consistent
):
    linked(resident)
    start = ago(hours=2)

    body = pushed(
        second_operator,
        [
            # No line named: before, nothing tied the tap to the operator's own network.
            tap("m-jiedaokou", "in", start, record_id="no-line-in"),
            tap("m-huquan", "out", start + timedelta(minutes=8), record_id="no-line-out"),
            tap("b-zhongnan-road", "in", start, mode="bus", line="bus-401", record_id="line"),
        ],
    )

    assert codes(body) == {
        "no-line-in": "not_your_station",
        "no-line-out": "not_your_station",
        "line": "not_your_line",
    }
    assert all(r["message"] for r in body["rows"])
    assert body["accepted"] == 0 and body["errors"] == 3
    assert not Tap.objects.exists() and not Trip.objects.exists()
    assert not Claim.objects.exists()
    ledger_is_consistent()


def test_an_operator_may_tap_the_stations_of_its_own_lines_shared_ones_included(
    transit, operator, second_operator, resident
):
    # The second operator runs a line that shares Jiedaokou with Wuhan Metro's line 2.
    line = TransitLine.objects.create(
        code="lr-1", name="Light rail 1", mode="metro", operator=second_operator.partner
    )
    own = Station.objects.create(
        code="m-lr-terminus", name="Terminus", mode="metro", location=Point(114.36, 30.54)
    )
    LineStop.objects.create(line=line, station=Station.objects.get(code="m-jiedaokou"), sequence=1)
    LineStop.objects.create(line=line, station=own, sequence=2, metres_from_previous=2500)
    linked(resident)
    start = ago(hours=2)

    body = pushed(
        second_operator,
        [
            tap("m-jiedaokou", "in", start, record_id="shared"),
            tap("m-lr-terminus", "out", start + timedelta(minutes=6), record_id="own"),
            tap("m-huquan", "in", start + timedelta(minutes=30), record_id="theirs"),
        ],
    )

    assert codes(body) == {"shared": "accepted", "own": "accepted", "theirs": "not_your_station"}
    assert Trip.objects.get().claim.user == resident
    # Wuhan Metro still taps at the shared station, and not at the second operator's own.
    mine = pushed(
        operator,
        [
            tap("m-jiedaokou", "in", ago(hours=1), record_id="wm-shared"),
            tap("m-lr-terminus", "out", ago(minutes=50), record_id="wm-theirs"),
        ],
    )
    assert codes(mine) == {"wm-shared": "accepted", "wm-theirs": "not_your_station"}


def test_a_station_only_on_lines_without_an_operator_takes_no_taps(transit, operator, resident):
    line = TransitLine.objects.create(code="bus-999", name="Bus 999", mode="bus", operator=None)
    stop = Station.objects.create(
        code="b-nowhere", name="Nowhere", mode="bus", location=Point(114.30, 30.55)
    )
    LineStop.objects.create(line=line, station=stop, sequence=1)
    linked(resident)

    body = pushed(operator, [tap("b-nowhere", "in", ago(hours=1), mode="bus", line="bus-999")])

    assert codes(body) == {body["rows"][0]["record_id"]: "not_your_station"}
    assert not Tap.objects.exists()
