"""Cells through the API: only certified and in-notice cells are public (list, GeoJSON,
detail with achievements, stats); residents object during a notice period; an operator
applies, updates, records achievements and sends evidence photos for their own cells only."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.carbon.api_helpers import assert_error, client_for, new_key
from tests.carbon.factories import DistrictFactory, UserFactory
from tests.carbon.photo_samples import photo_bytes
from tests.zerowaste.factories import CellFactory, IndicatorFactory
from zerowaste.cells.models import Achievement, Cell, CellOperator, Evidence, Objection

pytestmark = pytest.mark.django_db


def test_only_certified_and_in_notice_cells_are_public(api, certified_cell, notice_cell):
    hidden = CellFactory(applied=True)
    listed = api.get("/api/v1/zerowaste/cells").json()
    assert {c["id"]: c["in_notice"] for c in listed} == {
        certified_cell.pk: False,
        notice_cell.pk: True,
    }
    assert_error(api.get(f"/api/v1/zerowaste/cells/{hidden.pk}"), 404, "cell_not_found")
    only = api.get("/api/v1/zerowaste/cells", {"status": "in_notice"}).json()
    assert [c["id"] for c in only] == [notice_cell.pk]
    assert api.get("/api/v1/zerowaste/cells", {"kind": "family"}).json() == []
    assert api.get("/api/v1/zerowaste/cells", {"district": "nowhere"}).json() == []
    assert_error(api.get("/api/v1/zerowaste/cells", {"status": "applied"}), 400, "invalid")


def test_the_list_as_geojson_by_format_or_accept(api, certified_cell):
    for answer in (
        api.get("/api/v1/zerowaste/cells", {"format": "geojson"}),
        api.get("/api/v1/zerowaste/cells", HTTP_ACCEPT="application/geo+json"),
    ):
        assert answer.status_code == 200
        assert answer["Content-Type"].startswith("application/geo+json")
        body = answer.json()
        assert body["type"] == "FeatureCollection"
        feature = body["features"][0]
        assert feature["geometry"] == {"type": "Point", "coordinates": [114.3, 30.58]}
        assert feature["properties"]["name"] == certified_cell.name
        assert "location" not in feature["properties"]
    refused = api.get("/api/v1/zerowaste/cells", {"format": "geojson", "kind": "moon"})
    assert refused["Content-Type"] == "application/json"
    assert_error(refused, 400, "invalid")


def test_a_cell_shows_its_achievements_and_the_stats_add_them_up(api, certified_cell):
    indicator = IndicatorFactory(kind=certified_cell.kind)
    this_month = timezone.localdate().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    for month, value in ((last_month, "120.50"), (this_month, "130")):
        Achievement.objects.create(
            cell=certified_cell, indicator=indicator, month=month, value=Decimal(value)
        )

    body = api.get(f"/api/v1/zerowaste/cells/{certified_cell.pk}").json()

    assert body["indicators"][0]["achievements"] == [
        {"month": f"{last_month:%Y-%m}", "value": "120.50"},
        {"month": f"{this_month:%Y-%m}", "value": "130.00"},
    ]
    stats = api.get("/api/v1/zerowaste/stats").json()
    assert stats["totals"] == {"certified": 1, "in_notice": 0, "kg_avoided": 250}
    by_kind = {row["kind"]: row for row in stats["by_kind"]}
    assert by_kind["school"]["certified"] == 1 and by_kind["family"]["certified"] == 0


def test_residents_object_during_the_notice_period_once_each(auth_api, notice_cell, certified_cell):
    url = f"/api/v1/zerowaste/cells/{notice_cell.pk}/objections"
    key = new_key()

    first = auth_api.post(
        url, {"reason": "The bins overflow.", "idempotency_key": key}, format="json"
    )
    retry = auth_api.post(
        url, {"reason": "The bins overflow.", "idempotency_key": key}, format="json"
    )
    second = auth_api.post(url, {"reason": "Again.", "idempotency_key": new_key()}, format="json")

    assert first.status_code == 201 and retry.status_code == 200
    assert first.json()["objections"] == 1
    assert_error(second, 409, "objection_exists")
    assert_error(
        auth_api.post(
            f"/api/v1/zerowaste/cells/{certified_cell.pk}/objections",
            {"reason": "x", "idempotency_key": new_key()},
            format="json",
        ),
        409,
        "cell_not_in_notice",
    )
    from rest_framework.test import APIClient

    assert (
        APIClient().post(url, {"reason": "x", "idempotency_key": key}, format="json").status_code
        == 401
    )
    assert Objection.objects.count() == 1
    assert APIClient().get(f"/api/v1/zerowaste/cells/{notice_cell.pk}").json()["objections"] == 1


def apply(client, **extra):
    district = DistrictFactory(code="jianghan")
    payload = {
        "idempotency_key": new_key(),
        "kind": "shop",
        "name": "绿色小店",
        "district": district.code,
        "longitude": 114.27,
        "latitude": 30.59,
        "contact_name": "Front desk",
        "population": 6,
        **extra,
    }
    return client.post("/api/v1/zerowaste/my/cells", payload, format="json"), payload


def test_an_operator_applies_and_a_retry_makes_one_cell(auth_api, resident, api):
    answer, payload = apply(auth_api)
    again = auth_api.post("/api/v1/zerowaste/my/cells", payload, format="json")

    assert answer.status_code == 201, answer.content
    assert again.status_code == 200 and again.json()["id"] == answer.json()["id"]
    body = answer.json()
    assert body["status"] == "applied"
    assert [t["action"] for t in body["transitions"]] == ["apply"]
    assert CellOperator.objects.get().user == resident
    # Not public until certified or in notice.
    assert_error(api.get(f"/api/v1/zerowaste/cells/{body['id']}"), 404, "cell_not_found")
    conflict = auth_api.post(
        "/api/v1/zerowaste/my/cells", {**payload, "name": "Other"}, format="json"
    )
    assert_error(conflict, 409, "idempotency_conflict")
    unknown, _ = apply(auth_api, district="atlantis")
    assert_error(unknown, 400, "invalid")
    assert Cell.objects.count() == 1


def test_an_operator_updates_and_records_achievements_of_their_own_cell_only(auth_api):
    cell_id = apply(auth_api)[0].json()["id"]
    IndicatorFactory(kind="shop", code="kg_diverted")
    url = f"/api/v1/zerowaste/my/cells/{cell_id}"

    updated = auth_api.patch(url, {"description": "Bulk goods, no plastic."}, format="json")
    recorded = auth_api.post(
        f"{url}/achievements",
        {
            "month": f"{timezone.localdate():%Y-%m}",
            "values": [{"indicator": "kg_diverted", "value": "42.5"}],
        },
        format="json",
    )
    unknown = auth_api.post(
        f"{url}/achievements",
        {
            "month": f"{timezone.localdate():%Y-%m}",
            "values": [{"indicator": "nonsense", "value": "1"}],
        },
        format="json",
    )
    future = auth_api.post(
        f"{url}/achievements",
        {"month": "2099-01", "values": [{"indicator": "kg_diverted", "value": "1"}]},
        format="json",
    )

    assert updated.json()["description"] == "Bulk goods, no plastic."
    assert recorded.status_code == 200
    assert Achievement.objects.get().value == Decimal("42.50")
    assert_error(unknown, 400, "unknown_indicator")
    assert_error(future, 400, "invalid")
    other = client_for(UserFactory())
    assert_error(other.patch(url, {"name": "Mine now"}, format="json"), 404, "cell_not_found")
    assert_error(other.get(url), 404, "cell_not_found")
    assert other.get("/api/v1/zerowaste/my/cells").json() == []


def test_evidence_goes_through_the_image_pipeline(auth_api):
    cell_id = apply(auth_api)[0].json()["id"]
    url = f"/api/v1/zerowaste/my/cells/{cell_id}/evidence"
    key = new_key()

    def send(data, name="p.jpg", key=key):
        return auth_api.post(
            url,
            {
                "photo": SimpleUploadedFile(name, data),
                "caption": "Sorting bins",
                "idempotency_key": key,
            },
            format="multipart",
        )

    refused = send(b"not an image at all", name="photo.jpg", key=new_key())
    stored = send(photo_bytes(seed=3))
    retry = send(photo_bytes(seed=3))

    assert_error(refused, 400, "not_an_image")
    assert stored.status_code == 201, stored.content
    assert retry.status_code == 200 and retry.json()["id"] == stored.json()["id"]
    evidence = Evidence.objects.get()
    with evidence.image.open("rb") as handle:
        kept = handle.read()
    assert kept[:2] == b"\xff\xd8" and b"Exif" not in kept[:200]  # re-encoded, no metadata


def test_renewal_can_be_asked_only_near_expiry(auth_api, resident):
    cell = CellFactory()
    CellOperator.objects.create(cell=cell, user=resident)
    url = f"/api/v1/zerowaste/my/cells/{cell.pk}/renewal"
    assert_error(auth_api.post(url), 409, "cell_transition_not_allowed")
    cell.expires_at = timezone.now() + timedelta(days=20)
    cell.save()

    answer = auth_api.post(url)

    assert answer.status_code == 200
    assert answer.json()["renewal_requested_at"] is not None
    assert answer.json()["transitions"][-1]["action"] == "request_renewal"
