"""The partner-batch kit, seen from both signed feeds (transit taps and partner events): any bad
row is that row's error, both feeds answer one shape with one list of row codes, and the
OpenAPI description is the models the feeds validate with."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Annotated

import pytest
from django.core.management import call_command
from django.utils import timezone
from pydantic import Field
from rest_framework.test import APIClient

from carbon.adapters.batch import RowCode, RowModel
from carbon.adapters.partner_events.feed import BEHAVIOUR_FIELDS, EventEnvelope
from carbon.adapters.partner_events.links import partner_link_create
from carbon.adapters.partner_events.models import PartnerEvent
from carbon.adapters.transit.cards import card_hash
from carbon.adapters.transit.feed import TapRecord
from carbon.adapters.transit.models import Tap
from carbon.adapters.transit.network import forget_network
from carbon.models import Claim
from carbon.services.linking import link_confirm_by_partner
from carbon.services.partners import partner_create
from tests.carbon.api_helpers import assert_error, partner_post, signed_headers
from tests.carbon.factories import BehaviourFactory

pytestmark = pytest.mark.django_db

TAPS = "/api/v1/partners/transit/taps"
EVENTS = "/api/v1/partners/events"
HUGE = "x" * 200_000
NESTED = {"a": [{"b": [{"c": None}]}]}

# The answer both feeds give, whatever their rows (taps add a `trips` block).
ANSWER = {"received", "accepted", "duplicate", "error", "rows"}
DEPRECATED = {TAPS: {"duplicates", "errors"}, EVENTS: {"results"}}


@pytest.fixture
def operator(db):
    """The metro operator, named as in the demo network's lines.csv."""
    return partner_create(name="Wuhan Metro", kind="transit_operator")


@pytest.fixture
def network(operator, metro):
    forget_network()
    call_command("load_transit", demo=True, verbosity=0)
    yield
    forget_network()


# Behaviour code -> the fields of a good event of it, and one bad field.
BEHAVIOUR_ROWS = {
    "bike-share": ({"distance_km": 3.2, "duration_s": 900}, {"duration_s": 900.0}),
    "nev-ride": ({"distance_km": "12.5", "shared": "yes"}, {"distance_km": "twelve"}),
    "walking": ({"steps": 5000}, {"steps": 1}),  # 0.7 m: too few to count
    "recycling": ({"weight_kg": 2.5, "material": "glass"}, {"material": ["glass"]}),
    "saved-electricity": ({"saved_kwh": 12, "period": "2025-05"}, {"period": "May 2025"}),
    "no-cutlery": ({"order_id": "o-1", "cutlery": False}, {"cutlery": 0}),
    "second-hand": ({"items": 2, "item_category": "book"}, {"items": True}),
    "e-receipt": ({"receipts": 3}, {"receipts": 51}),
    "own-bag": ({"uses": 2}, {"uses": -1}),
    "tree-planting": ({"quantity": "1.5"}, {"quantity": "NaN"}),  # any other behaviour
}


@pytest.fixture
def platform(db):
    """A partner allowed every behaviour above (none has a factor: nobody is linked)."""
    issued = partner_create(name="Green Platform", kind="platform")
    for code in BEHAVIOUR_ROWS:
        issued.partner.behaviours.add(
            BehaviourFactory(code=code, evidence_types=["partner"], max_quantity=Decimal("50"))
        )
    return issued


def tap(rid: str, **fields) -> dict:
    return {
        "record_id": rid,
        "card_hash": card_hash("6227 0012 3456 7890"),
        "station": "m-jiedaokou",
        "mode": "metro",
        "direction": "in",
        "at": (timezone.now() - timedelta(hours=1)).isoformat(),
        **fields,
    }


def event(eid: str, code: str = "bike-share", **fields) -> dict:
    return {
        "event_id": eid,
        "behaviour": code,
        "user_ref": "u-42",
        "occurred_at": (timezone.now() - timedelta(hours=1)).isoformat(),
        **BEHAVIOUR_ROWS[code][0],
        **fields,
    }


def push(issued, url: str, rows: list, **kw):
    key = "taps" if url == TAPS else "events"
    return partner_post(url, key_id=issued.key_id, secret=issued.secret, payload={key: rows}, **kw)


def pushed(issued, url: str, rows: list, **kw) -> dict:
    response = push(issued, url, rows, **kw)
    assert response.status_code == 200, response.content
    return response.json()


def feeds(operator, platform) -> list[tuple]:
    """(issuer, url, a good row, the row's id field) for each feed."""
    return [(operator, TAPS, tap, "record_id"), (platform, EVENTS, event, "event_id")]


# --- any bad row is that row's error -------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [None, 7, 3.5, True, [], [{"record_id": "r"}], HUGE, NESTED], ids=repr
)
@pytest.mark.parametrize("url", [TAPS, EVENTS])
def test_a_row_that_is_not_an_object_is_that_rows_error_for_both_feeds(
    network, operator, platform, url, bad
):
    issued, _, good, _ = next(f for f in feeds(operator, platform) if f[1] == url)

    body = pushed(issued, url, [good("ok-1"), bad, good("ok-2")])

    assert [r["status"] for r in body["rows"]] == ["accepted", "error", "accepted"]
    assert body["rows"][1]["code"] == "malformed_row" and body["rows"][1]["message"]
    assert (body["received"], body["accepted"], body["error"]) == (3, 2, 1)


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("record_id", "invalid_record_id"),
        ("card_hash", "invalid_card_hash"),
        ("mode", "invalid_mode"),
        ("direction", "invalid_direction"),
        ("at", "invalid_time"),
        ("station", "unknown_station"),
        ("line", "unknown_line"),
    ],
)
@pytest.mark.parametrize(
    "value", [NESTED, [1, 2], 10**200, HUGE], ids=["nested", "list", "big", "huge"]
)
def test_a_tap_field_of_any_wrong_type_or_size_is_its_own_code(
    network, operator, field, code, value
):
    body = pushed(operator, TAPS, [tap("ok-1"), tap("bad", **{field: value})])

    bad = body["rows"][1]
    assert (bad["status"], bad["code"]) == ("error", code), bad
    assert len(bad["message"]) < 200  # the message never echoes what was sent
    assert body["rows"][0]["status"] == "accepted"
    assert set(Tap.objects.values_list("record_id", flat=True)) == {"ok-1"}


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("event_id", "malformed_row"),
        ("behaviour", "behaviour_not_allowed"),
        ("user_ref", "malformed_row"),
        ("occurred_at", "invalid_time"),
        ("distance_km", "invalid_field"),
        ("duration_s", "invalid_field"),
    ],
)
@pytest.mark.parametrize(
    "value", [NESTED, [1, 2], 10**200, HUGE], ids=["nested", "list", "big", "huge"]
)
def test_an_event_field_of_any_wrong_type_or_size_is_its_own_code(platform, field, code, value):
    body = pushed(platform, EVENTS, [event("ok-1"), event("bad", **{field: value})])

    bad = body["rows"][1]
    assert (bad["status"], bad["code"]) == ("error", code), bad
    assert len(bad["message"]) < 200
    assert list(PartnerEvent.objects.values_list("event_id", flat=True)) == ["ok-1"]


@pytest.mark.parametrize("url", [TAPS, EVENTS])
def test_a_body_nested_too_deeply_to_read_is_a_malformed_request_not_a_server_error(
    network, operator, platform, url
):
    issued = operator if url == TAPS else platform
    key = "taps" if url == TAPS else "events"
    body = (f'{{"{key}": [' + "[" * 100_000 + "]" * 100_000 + "]}").encode()
    headers = signed_headers(key_id=issued.key_id, secret=issued.secret, body=body)

    client = APIClient(raise_request_exception=False)
    response = client.generic("POST", url, body, content_type="application/json", **headers)

    assert_error(response, 400, "malformed_request")


def test_a_row_that_fails_several_checks_reports_the_first(network, operator):
    rows = [
        tap("a", mode="ferry", surprise=1),  # unknown fields come first
        tap(" b", mode="ferry"),  # then the fields, in the order the model declares them
        tap("c", mode="ferry", at="yesterday"),
        tap("d", at="yesterday", station="m-atlantis"),  # fields before the network
        tap("e", station="m-atlantis", line="metro-2"),
    ]

    body = pushed(operator, TAPS, rows)

    assert [r["code"] for r in body["rows"]] == [
        "malformed_row",
        "invalid_record_id",
        "invalid_mode",
        "invalid_time",
        "unknown_station",
    ]
    assert body["rows"][0]["message"] == "Unknown fields: surprise."


# --- each behaviour's declared fields --------------------------------------------------------


@pytest.mark.parametrize("code", list(BEHAVIOUR_ROWS))
def test_each_behaviour_takes_its_declared_fields_and_refuses_others(platform, code):
    good, bad_fields = BEHAVIOUR_ROWS[code]

    body = pushed(platform, EVENTS, [event("good", code), event("bad", code, **bad_fields)])

    assert body["rows"][0]["status"] == "accepted", body["rows"][0]
    assert (body["rows"][1]["status"], body["rows"][1]["code"]) == ("error", "invalid_field")
    stored = PartnerEvent.objects.get(event_id="good")
    assert stored.behaviour.code == code and stored.quantity > 0


def test_behaviour_details_are_kept_as_before(platform):
    pushed(
        platform,
        EVENTS,
        [
            event("nev", "nev-ride"),
            event("walk", "walking"),
            event("cut", "no-cutlery"),
            event("other", "tree-planting"),
        ],
    )

    details = dict(PartnerEvent.objects.values_list("event_id", "details"))
    assert details["nev"] == {"distance_km": "12.5", "shared": True}  # any truthy value
    assert details["walk"] == {"steps": 5000}
    assert PartnerEvent.objects.get(event_id="walk").quantity == Decimal("3.5")
    assert set(details["cut"]) == {"order_id_hash"} and "o-1" not in json.dumps(details["cut"])
    assert details["other"] == {"quantity": "1.5"}


def test_times_at_the_ends_of_the_calendar_are_row_errors(platform, network, operator):
    earliest, latest = "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"

    events = pushed(
        platform, EVENTS, [event("first", occurred_at=earliest), event("last", occurred_at=latest)]
    )
    taps = pushed(operator, TAPS, [tap("first", at=earliest), tap("last", at=latest)])

    assert [r["code"] for r in events["rows"]] == ["outside_claim_window", "invalid_time"]
    assert [r["code"] for r in taps["rows"]] == ["time_too_old", "time_in_future"]


def test_a_claim_the_rules_refuse_is_that_events_error_with_the_rules_code(platform, resident):
    self_only = BehaviourFactory(code="stairs", evidence_types=["self"], consent_scope="")
    platform.partner.behaviours.add(self_only)
    link_confirm_by_partner(
        link=partner_link_create(
            user=resident, partner=platform.partner, external_ref="u-42", consent=True
        ).link
    )

    body = pushed(platform, EVENTS, [event("s", "tree-planting", behaviour="stairs")])

    assert (body["rows"][0]["status"], body["rows"][0]["code"]) == (
        "error",
        "evidence_not_accepted",
    )
    assert not PartnerEvent.objects.filter(event_id="s").exists()
    assert not Claim.objects.exists()


# --- one answer -----------------------------------------------------------------------------


def test_both_feeds_answer_the_same_shape(network, operator, platform):
    answers = {}
    for issued, url, good, id_field in feeds(operator, platform):
        same = good("same")
        first = pushed(issued, url, [same], timestamp=int(timezone.now().timestamp()) - 5)
        assert first["accepted"] == 1
        answers[url] = (pushed(issued, url, [good("new"), same, "bad"]), id_field)

    shapes = set()
    for url, (body, id_field) in answers.items():
        assert set(body) - {"trips"} == ANSWER | DEPRECATED[url]
        assert (body["received"], body["accepted"], body["duplicate"], body["error"]) == (
            3,
            1,
            1,
            1,
        )
        assert [r["index"] for r in body["rows"]] == [0, 1, 2]
        assert [r["status"] for r in body["rows"]] == ["accepted", "duplicate", "error"]
        assert [r[id_field] for r in body["rows"][:2]] == ["new", "same"]
        error = body["rows"][2]
        shapes.add(frozenset(set(error) - {id_field}))
        assert error["code"] == "malformed_row"
    assert shapes == {frozenset({"index", "status", "code", "message"})}
    # Only the blocks a feed has of its own differ.
    assert set(answers[TAPS][0]) - set(answers[EVENTS][0]) == {"trips", "duplicates", "errors"}


@pytest.mark.parametrize("url", [TAPS, EVENTS])
def test_the_deprecated_names_repeat_the_new_fields(network, operator, platform, url):
    issued, _, good, _ = next(f for f in feeds(operator, platform) if f[1] == url)

    body = pushed(issued, url, [good("a"), None])

    if url == TAPS:
        assert (body["duplicates"], body["errors"]) == (body["duplicate"], body["error"])
    else:
        assert body["results"] == body["rows"]


def test_a_resent_id_with_other_content_is_the_same_conflict_for_both_feeds(
    network, operator, platform
):
    codes = set()
    for issued, url, good, id_field in feeds(operator, platform):
        first = good("r1")
        pushed(issued, url, [first], timestamp=int(timezone.now().timestamp()) - 5)
        changed = {**first, "user_ref": "u-43"} if url == EVENTS else {**first, "direction": "out"}

        row = pushed(issued, url, [changed])["rows"][0]

        assert row["status"] == "error"
        assert row["message"] == f"This {id_field} was already received with different content."
        codes.add(row["code"])
    assert codes == {"record_conflict"}
    assert Tap.objects.get(record_id="r1").direction == "in"
    assert PartnerEvent.objects.get(event_id="r1").external_ref_hash != ""


@pytest.mark.parametrize(("url", "limit"), [(TAPS, 5000), (EVENTS, 1000)])
def test_a_batch_over_its_limit_is_refused_whole_with_the_limit(
    network, operator, platform, url, limit
):
    issued, _, good, _ = next(f for f in feeds(operator, platform) if f[1] == url)

    response = push(issued, url, [good(f"r{i}") for i in range(limit + 1)])

    error = assert_error(response, 413, "batch_too_large")
    assert error["details"] == {"max": limit, "received": limit + 1}
    assert not Tap.objects.exists() and not PartnerEvent.objects.exists()


# --- the declared models are the documentation ----------------------------------------------


@pytest.fixture
def schema(db):
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def component(schema, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def request_schema(schema, path: str) -> dict:
    body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return component(schema, body["schema"]["$ref"])


def test_the_tap_request_schema_is_the_model_the_feed_validates_with(schema):
    batch = request_schema(schema, TAPS)
    taps = batch["properties"]["taps"]
    documented = component(schema, taps["items"]["$ref"])

    assert taps["maxItems"] == 5000
    assert set(documented["properties"]) == set(TapRecord.model_fields)
    assert set(documented["required"]) == {
        name for name, f in TapRecord.model_fields.items() if f.is_required()
    }
    assert documented["additionalProperties"] is False  # unknown fields refuse the tap
    record_id = documented["properties"]["record_id"]
    assert (record_id["minLength"], record_id["maxLength"]) == (1, 100)
    assert (
        record_id["pattern"] == TapRecord.model_json_schema()["properties"]["record_id"]["pattern"]
    )
    assert component(schema, documented["properties"]["mode"]["$ref"])["enum"] == ["metro", "bus"]
    assert documented["properties"]["line"]["nullable"] is True
    assert "Tap" not in schema["components"]["schemas"]  # the hand-written serializer is gone


def test_the_event_request_schema_documents_the_envelope_and_every_behaviour(schema):
    events = request_schema(schema, EVENTS)["properties"]["events"]
    documented = [component(schema, branch["$ref"]) for branch in events["items"]["anyOf"]]
    envelope = set(EventEnvelope.model_fields)

    assert (events["minItems"], events["maxItems"]) == (1, 1000)
    assert len(documented) == len(BEHAVIOUR_FIELDS) + 1
    for code, fields in BEHAVIOUR_FIELDS.items():
        (one,) = [
            d
            for d in documented
            if "$ref" in d["properties"]["behaviour"]
            and component(schema, d["properties"]["behaviour"]["$ref"])["enum"] == [code]
        ]
        assert set(one["properties"]) == envelope | set(fields.model_fields), code
    other = documented[-1]
    assert set(other["properties"]) == envelope | {"quantity"}
    assert other["properties"]["quantity"]["anyOf"][0] == {
        "type": "number",
        "minimum": 0.0,
        "exclusiveMinimum": True,
    }
    bike = next(d for d in documented if "duration_s" in d["properties"])
    assert bike["properties"]["duration_s"] | {"description": ""} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 86400,
        "description": "",
    }


def test_the_answers_share_one_row_code_list_and_mark_the_old_names_deprecated(schema):
    schemas = schema["components"]["schemas"]
    codes = schemas["BatchRowCodeEnum"]["enum"]

    assert codes == [c.value for c in RowCode]
    assert "record_conflict" in codes and "event_conflict" not in codes
    for answer, row, old in [
        ("TapBatchReport", "TapRowReport", {"duplicates", "errors"}),
        ("PartnerEventBatchResult", "PartnerEventRowResult", {"results"}),
    ]:
        properties = schemas[answer]["properties"]
        assert ANSWER | old <= set(properties)
        for name in old:
            assert properties[name]["deprecated"] is True
            assert properties[name]["description"].startswith("Deprecated")
        assert not any(properties[name].get("deprecated") for name in ANSWER)
        code = schemas[row]["properties"]["code"]
        assert code["allOf"][0]["$ref"].endswith("/BatchRowCodeEnum")


def test_a_row_model_must_declare_the_code_of_each_field():
    with pytest.raises(TypeError, match="declares no RowField"):

        class Undeclared(RowModel):
            weight: Annotated[int, Field(ge=1)]
