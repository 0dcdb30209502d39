"""Pairing taps into trips, the network distances, the loader and the transit adapter,
tested on the services."""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from carbon.adapters.transit.cards import card_hash
from carbon.adapters.transit.feed import transit_taps_ingest
from carbon.adapters.transit.models import LineStop, Station, Tap, TransitLine, Trip, TripStatus
from carbon.adapters.transit.network import network
from carbon.adapters.transit.pairing import MAX_TRIP_DURATION, PAIRING_GRACE, transit_pair
from carbon.adapters.transit.trips import transit_taps_settle
from carbon.adapters.transit.verifier import TransitVerifier
from carbon.errors import EvidenceNotAccepted
from carbon.models import Claim, ClaimStatus, Transfer
from carbon.services.catalogue import emission_factor_publish
from tests.carbon.api_helpers import client_for
from tests.carbon.transit_samples import CARD, ago, linked, push, tap

pytestmark = pytest.mark.django_db


def ingest(issued, taps, now=None):
    return transit_taps_ingest(partner=issued.partner, rows=taps, now=now)


def later(**kw):
    return timezone.now() + timedelta(**kw)


# --- the network --------------------------------------------------------------------------


def test_metro_distance_is_along_the_network_through_the_interchange(transit):
    net = network()
    ids = {code: s.id for code, s in net.stations.items()}

    metres, path = net.route(ids["m-jiedaokou"], ids["m-chuhe-hanjie"])

    # Line 2 to Hongshan Square, then Line 4 one stop: 1310 + 1250 + 1020 + 1560 m.
    assert metres == 5140
    assert [net.stations_by_id[s].code for s in path] == [
        "m-jiedaokou",
        "m-baotong-temple",
        "m-zhongnan-road",
        "m-hongshan-square",
        "m-chuhe-hanjie",
    ]
    a, b = Station.objects.get(code="m-jiedaokou"), Station.objects.get(code="m-chuhe-hanjie")
    # The straight line, flat-earth (fine over a few km): about 3.35 km.
    dx = (b.location.x - a.location.x) * 111_320 * math.cos(math.radians(a.location.y))
    dy = (b.location.y - a.location.y) * 110_574
    assert 3300 < math.hypot(dx, dy) < 3400
    assert metres > 1.5 * math.hypot(dx, dy)


def test_a_stop_without_a_track_length_counts_the_straight_line(transit):
    net = network()
    ids = {code: s.id for code, s in net.stations.items()}

    along = net.along_line(
        TransitLine.objects.get(code="bus-401").pk, ids["b-hongshan-square"], ids["b-zhongnan-road"]
    )

    assert 950 < along < 1050  # 0.0085 degrees of latitude and a little east


def test_the_graph_is_rebuilt_when_the_network_changes(transit):
    net = network()
    ids = {code: s.id for code, s in net.stations.items()}
    assert net.route(ids["m-jiedaokou"], ids["m-guangbutun"])[0] == 1310

    stop = LineStop.objects.get(line__code="metro-2", station__code="m-guangbutun")
    stop.metres_from_previous = 1500
    stop.save()

    assert network().route(ids["m-jiedaokou"], ids["m-guangbutun"])[0] == 1500


def test_the_card_hash_is_the_documented_hmac(settings):
    settings.TRANSIT_CARD_HASH_KEY = "shared-with-the-operator"
    expected = hmac.new(
        b"shared-with-the-operator", b"6227001234567890", hashlib.sha256
    ).hexdigest()

    assert card_hash("6227 0012-3456 7890") == expected


# --- the loader ---------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


STATIONS = """{"type": "FeatureCollection", "features": [
 {"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.30, 30.50]},
  "properties": {"code": "a", "name": "A", "mode": "metro"}},
 {"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.31, 30.50]},
  "properties": {"code": "b", "name": "B", "mode": "metro"}},
 {"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.32, 30.50]},
  "properties": {"code": "c", "name": "C", "mode": "metro"}}]}"""
HEADER = "line,line_name,mode,operator,sequence,station,metres_from_previous\n"


def test_the_loader_reads_stations_and_lines_and_replaces_a_lines_stops(db, tmp_path):
    stations = write(tmp_path, "s.geojson", STATIONS)
    lines = write(
        tmp_path, "l.csv", HEADER + "x,X,metro,,1,a,\nx,X,metro,,2,b,1100\nx,X,metro,,3,c,\n"
    )

    call_command("load_transit", stations=stations, lines=lines, verbosity=0)
    call_command(
        "load_transit",
        lines=write(
            tmp_path, "l2.csv", HEADER + "x,X line,metro,,1,c,\nx,X line,metro,,2,a,2000\n"
        ),
        verbosity=0,
    )

    assert Station.objects.count() == 3
    line = TransitLine.objects.get(code="x")
    assert line.name == "X line"
    assert list(line.stops.values_list("station__code", "metres_from_previous")) == [
        ("c", None),
        ("a", 2000),
    ]


@pytest.mark.parametrize(
    "csv, message",
    [
        ("x,X,metro,,1,a,\nx,X,metro,,2,zz,900\n", "unknown station"),
        ("x,X,metro,,1,a,\nx,X,metro,,2,b,200\n", "shorter than"),
        ("x,X,metro,,1,a,\nx,X,metro,,1,b,900\n", "sequence number appears twice"),
        ("x,X,metro,,1,a,500\nx,X,metro,,2,b,900\n", "first stop"),
        ("x,X,metro,Nobody,1,a,\nx,X,metro,Nobody,2,b,900\n", "no partner"),
        ("x,X,bus,,1,a,\nx,X,bus,,2,b,900\n", "is a metro station"),
        ("x,X,metro,,1,a,\nx,X,metro,,2,b,nine\n", "whole numbers"),
    ],
)
def test_the_loader_refuses_bad_lines_and_loads_nothing_of_them(db, tmp_path, csv, message):
    call_command("load_transit", stations=write(tmp_path, "s.geojson", STATIONS), verbosity=0)

    with pytest.raises(CommandError, match=message):
        call_command("load_transit", lines=write(tmp_path, "l.csv", HEADER + csv), verbosity=0)

    assert TransitLine.objects.count() == 0 and LineStop.objects.count() == 0


def test_the_demo_network_has_two_metro_lines_meeting_at_two_interchanges(transit):
    l2 = set(LineStop.objects.filter(line__code="metro-2").values_list("station__code", flat=True))
    l4 = set(LineStop.objects.filter(line__code="metro-4").values_list("station__code", flat=True))

    assert l2 & l4 == {"m-hongshan-square", "m-zhongnan-road"}
    assert TransitLine.objects.filter(mode="bus").count() == 2


# --- pairing rules --------------------------------------------------------------------------


def test_an_exit_without_entry_waits_for_a_late_entry_then_goes_to_review(
    transit, operator, resident, ledger_is_consistent
):
    linked(resident)
    out_at = ago(hours=6)
    ingest(operator, [tap("m-guangbutun", "out", out_at)])
    assert Trip.objects.count() == 0  # its entry may still come in a later batch

    transit_taps_settle(now=later(minutes=1))
    assert Trip.objects.count() == 0  # received too recently to give up on the entry

    transit_taps_settle(now=later(minutes=PAIRING_GRACE.total_seconds() / 60 + 1))

    trip = Trip.objects.get()
    assert trip.anomaly == "exit_without_entry" and trip.status == TripStatus.REVIEW
    assert trip.entry_station is None and trip.exit_station.code == "m-guangbutun"
    assert trip.claim.status == ClaimStatus.NEEDS_REVIEW
    assert trip.claim.receipt["code"] == "exit_without_entry"
    # One end unknown: counted at the shortest ride from the known station, should a reviewer
    # approve it (Guangbutun - Jiedaokou, 1310 m).
    assert trip.claim.quantity == Decimal("1.310")
    assert Transfer.objects.count() == 0
    ledger_is_consistent()


def test_taps_arriving_out_of_order_across_batches_still_pair(
    transit, operator, resident, ledger_is_consistent
):
    linked(resident)
    start = ago(hours=7)
    ingest(operator, [tap("m-huquan", "out", start + timedelta(minutes=9))])
    ingest(operator, [tap("m-jiedaokou", "in", start)], now=later(minutes=5))

    trip = Trip.objects.get()
    assert (trip.entry_station.code, trip.exit_station.code) == ("m-jiedaokou", "m-huquan")
    assert trip.anomaly == "" and trip.claim.status == ClaimStatus.CREDITED
    assert Tap.objects.filter(trip=trip).count() == 2
    ledger_is_consistent()


def test_pairing_again_changes_nothing(transit, operator, resident):
    linked(resident)
    start = ago(hours=8)
    ingest(
        operator,
        [
            tap("m-jiedaokou", "in", start),
            tap("m-huquan", "out", start + timedelta(minutes=9)),
            tap("m-huquan", "in", start + timedelta(minutes=30)),
        ],
    )
    trips = Trip.objects.count()

    assert transit_pair(card_hashes=[card_hash(CARD)]) == 0
    assert (
        transit_pair(card_hashes=[card_hash(CARD)], now=later(minutes=20)) == 1
    )  # the lonely entry, now due
    assert transit_pair(card_hashes=[card_hash(CARD)], now=later(minutes=20)) == 0

    assert Trip.objects.count() == trips + 1
    assert Trip.objects.filter(anomaly="missing_exit").count() == 1


def test_an_entry_with_no_exit_becomes_a_missing_exit_once_the_longest_trip_is_over(
    transit, operator, resident
):
    linked(resident)
    first = ago(hours=3)
    ingest(
        operator,
        [
            tap("m-jiedaokou", "in", first),
            tap("m-xunlimen", "in", first + timedelta(hours=1)),
            tap("m-jianghan-road", "out", first + timedelta(hours=1, minutes=4)),
        ],
    )
    assert Trip.objects.count() == 1  # the second entry and its exit

    transit_taps_settle(now=first + MAX_TRIP_DURATION + PAIRING_GRACE)

    missing = Trip.objects.get(anomaly="missing_exit")
    assert missing.entry_station.code == "m-jiedaokou" and missing.exit_station is None
    assert missing.status == TripStatus.REVIEW and missing.claim.status == ClaimStatus.NEEDS_REVIEW


def test_overlapping_trips_on_one_card_go_to_review(
    transit, operator, resident, ledger_is_consistent
):
    linked(resident)
    start = ago(hours=2)

    ingest(
        operator,
        [
            tap("m-zhongshan-park", "in", start),
            tap("m-optics-valley-square", "out", start + timedelta(minutes=40)),
            tap("b-jiedaokou", "in", start + timedelta(minutes=10), mode="bus", line="bus-401"),
        ],
    )

    metro = Trip.objects.get(mode="metro")
    bus_trip = Trip.objects.get(mode="bus")
    assert metro.anomaly == "" and metro.claim.status == ClaimStatus.CREDITED
    assert bus_trip.anomaly == "overlapping_trip" and bus_trip.status == TripStatus.REVIEW
    assert bus_trip.anomaly_detail.startswith("Overlaps the card's metro trip")
    assert bus_trip.claim.status == ClaimStatus.NEEDS_REVIEW and bus_trip.claim.credited_g == 0
    ledger_is_consistent()


def test_a_trip_overlapping_one_credited_in_an_earlier_batch_goes_to_review(
    transit, operator, resident
):
    linked(resident)
    start = ago(hours=2)
    ingest(
        operator,
        [tap("m-jiedaokou", "in", start), tap("m-huquan", "out", start + timedelta(minutes=30))],
    )

    ingest(
        operator,
        [
            tap("m-xunlimen", "in", start + timedelta(minutes=5)),
            tap("m-jianghan-road", "out", start + timedelta(minutes=10)),
        ],
    )

    late = Trip.objects.get(entry_station__code="m-xunlimen")
    first = Trip.objects.get(entry_station__code="m-jiedaokou")
    assert late.anomaly == "overlapping_trip" and f"trip {first.pk}" in late.anomaly_detail
    assert first.claim.status == ClaimStatus.CREDITED


def test_entering_and_leaving_at_the_same_station_earns_nothing(transit, operator, resident):
    linked(resident)
    start = ago(hours=2)

    ingest(
        operator,
        [tap("m-jiedaokou", "in", start), tap("m-jiedaokou", "out", start + timedelta(minutes=3))],
    )

    trip = Trip.objects.get()
    assert trip.anomaly == "same_station" and trip.status == TripStatus.REVIEW
    assert trip.distance_m == 0 and trip.claim is None
    assert Claim.objects.count() == 0


def test_a_tap_out_more_than_the_longest_trip_after_the_entry_is_not_one_trip(
    transit, operator, resident
):
    linked(resident)
    start = ago(hours=12)

    ingest(
        operator,
        [tap("m-jiedaokou", "in", start), tap("m-huquan", "out", start + timedelta(hours=5))],
    )
    transit_taps_settle(now=later(minutes=16))

    assert sorted(Trip.objects.values_list("anomaly", flat=True)) == [
        "exit_without_entry",
        "missing_exit",
    ]


def test_a_bus_priced_by_distance_pairs_on_its_line(
    transit, operator, resident, bus, ledger_is_consistent
):
    linked(resident)
    # The city moves buses to per-km pricing.
    emission_factor_publish(
        behaviour=bus,
        grams_per_unit=Decimal("60"),
        unit="km",
        methodology="Per km",
        source="Test",
        valid_from=timezone.now() - timedelta(days=30),
    )
    start = ago(hours=2)

    ingest(
        operator,
        [
            tap("b-jianghan-road", "in", start, mode="bus", line="bus-540"),
            tap(
                "b-hongshan-square",
                "out",
                start + timedelta(minutes=35),
                mode="bus",
                line="bus-540",
            ),
        ],
    )

    trip = Trip.objects.get()
    # Along the route, across the river: 3280 + 3350 + 1570 m.
    assert trip.distance_m == 8200
    assert trip.claim.quantity == Decimal("8.200") and trip.claim.credited_g == 492
    assert trip.claim.receipt["steps"][0]["facts"]["distance_basis"] == "line"
    ledger_is_consistent()


def test_a_bus_exit_is_attached_to_its_boarding_when_trips_are_counted(transit, operator, resident):
    linked(resident)
    start = ago(hours=2)
    ingest(operator, [tap("b-hongshan-square", "in", start, mode="bus", line="bus-401")])

    ingest(
        operator,
        [
            tap(
                "b-wuhan-university",
                "out",
                start + timedelta(minutes=20),
                mode="bus",
                line="bus-401",
            )
        ],
    )

    trip = Trip.objects.get()
    assert trip.exit_station.code == "b-wuhan-university" and trip.ended_at is not None
    assert trip.claim.quantity == Decimal("1") and trip.claim.credited_g == 150
    assert Tap.objects.filter(trip__isnull=True).count() == 0


def test_trips_of_different_cards_never_mix(transit, operator, resident, other_resident):
    linked(resident)
    linked(other_resident, "6227009876543210")
    start = ago(hours=2)

    ingest(
        operator,
        [
            tap("m-jiedaokou", "in", start),
            tap("m-huquan", "out", start + timedelta(minutes=9), number="6227009876543210"),
        ],
    )
    assert Trip.objects.count() == 0
    transit_taps_settle(now=later(hours=4))

    assert sorted(Trip.objects.values_list("anomaly", "card_hash")) == [
        ("exit_without_entry", card_hash("6227009876543210")),
        ("missing_exit", card_hash(CARD)),
    ]


def test_a_duplicate_within_and_across_batches_is_stored_once(transit, operator, resident):
    row = tap("m-jiedaokou", "in", ago(hours=1), record_id="same")

    first = ingest(operator, [row, row])
    second = ingest(operator, [row])

    assert [r.status for r in first.rows] == ["accepted", "duplicate"]
    assert [r.status for r in second.rows] == ["duplicate"]
    assert Tap.objects.count() == 1
    # Other content under that id, twice in one batch: both refused, neither a "duplicate".
    changed = {**row, "station": "m-huquan"}
    third = ingest(operator, [changed, changed])
    assert [(r.status, r.code) for r in third.rows] == [("error", "record_conflict")] * 2
    assert Tap.objects.get().station.code == "m-jiedaokou"


def test_the_same_instant_written_with_another_offset_is_the_same_record(transit, operator):
    at = ago(hours=1).replace(microsecond=0)
    row = tap("m-jiedaokou", "in", at, record_id="r1")
    utc = {**row, "at": at.astimezone(UTC).isoformat()}

    assert [r.status for r in ingest(operator, [row]).rows] == ["accepted"]
    assert [r.status for r in ingest(operator, [utc]).rows] == ["duplicate"]


# --- the adapter --------------------------------------------------------------------------


def test_the_transit_adapter_takes_only_existing_unclaimed_trips_of_the_residents_card(
    transit, operator, resident, other_resident
):
    linked(resident)
    start = ago(hours=2)
    ingest(
        operator,
        [tap("m-jiedaokou", "in", start), tap("m-huquan", "out", start + timedelta(minutes=9))],
    )
    trip = Trip.objects.get()
    verifier = TransitVerifier()

    for evidence, user in [
        ({"trip": 10**9}, resident),
        ({"trip": "1"}, resident),
        ({}, resident),
        ({"trip": trip.pk}, resident),
        ({"trip": trip.pk}, other_resident),
    ]:
        with pytest.raises(EvidenceNotAccepted):
            verifier.prepare(user=user, evidence=evidence, files={})
    assert verifier.accepts_from_resident is False and verifier.tier == "transit"


def test_residents_cannot_submit_transit_evidence_themselves(transit, operator, resident):
    linked(resident)

    response = client_for(resident).post(
        "/api/v1/claims",
        {
            "behaviour": "metro",
            "quantity": "50",
            "idempotency_key": "2b0c9a52-30a4-4c1e-9f3e-3f6f3b0a9c11",
            "evidence": {"type": "transit", "trip": 1},
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "evidence_not_accepted"
    assert Claim.objects.count() == 0


# --- concurrency (PostgreSQL) ---------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_batch_pushed_twice_at_once_credits_once(transit, operator, resident):
    linked(resident)
    start = ago(hours=2)
    taps = [tap("m-jiedaokou", "in", start), tap("m-huquan", "out", start + timedelta(minutes=9))]
    results, errors = [], []
    barrier = threading.Barrier(2)

    def worker(offset):
        try:
            barrier.wait()
            results.append(push(operator, taps, timestamp=int(time.time()) - offset).status_code)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == [] and results == [200, 200]
    assert Tap.objects.count() == 2
    assert Trip.objects.count() == 1
    assert Claim.objects.count() == 1 and Transfer.objects.count() == 1
    call_command("ledger_check")


def test_the_loader_refuses_malformed_files_and_loads_nothing(db, tmp_path):
    from django.core.management import CommandError, call_command

    from carbon.adapters.transit.models import Station

    bad = tmp_path / "stations.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": ["not a feature"]}')
    with pytest.raises(CommandError):
        call_command("load_transit", stations=str(bad), verbosity=0)
    short = tmp_path / "lines.csv"
    short.write_text(
        "line,line_name,mode,operator,sequence,station,metres_from_previous\nmetro-9\n"
    )
    with pytest.raises(CommandError):
        call_command("load_transit", lines=str(short), verbosity=0)
    assert not Station.objects.exists()
