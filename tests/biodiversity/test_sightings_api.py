"""Recording sightings over the API: photos through the image pipeline, retries on a bad
network, EXIF prefill, GCJ-02, and bad input refused with nothing written."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from biodiversity.sightings.models import Flag, Identification, Sighting, SightingPhoto
from biodiversity.sightings.privacy import wgs84_to_gcj02
from tests.biodiversity.conftest import TRUE_LAT, TRUE_LON, photo_file, post_sighting
from tests.carbon.api_helpers import assert_error, client_for, new_key
from tests.carbon.factories import UserFactory
from tests.carbon.photo_samples import LAT, LON, photo_bytes, png_header_only

pytestmark = pytest.mark.django_db


def nothing_written():
    return (
        Sighting.objects.count(),
        SightingPhoto.objects.count(),
        Identification.objects.count(),
        sorted(_stored_files()),
    )


def _stored_files():
    try:
        dirs, _ = default_storage.listdir("sightings")
    except FileNotFoundError:
        return []
    return [f"{d}/{f}" for d in dirs for f in default_storage.listdir(f"sightings/{d}")[1]]


def test_a_sighting_with_photos_is_recorded_and_its_photos_served_without_metadata(
    observer_api, taxa
):
    response = post_sighting(
        observer_api,
        taxa["Ardea cinerea"],
        photos=[photo_file(1, gps=(LAT, LON)), photo_file(2, gps=(LAT, LON))],
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["taxon"]["scientific_name"] == "Ardea cinerea"
    assert body["quality_grade"] == "needs_id"  # one identification: no community taxon
    assert body["obscured"] is False
    assert body["location"]["latitude"] == pytest.approx(TRUE_LAT)
    assert [p["position"] for p in body["photos"]] == [1, 2]
    photo = observer_api.get(body["photos"][0]["url"])
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
    data = b"".join(photo.streaming_content)
    img = Image.open(io.BytesIO(data))
    assert not img.getexif()  # no EXIF, no GPS in what is served
    assert b"TestPhone" not in data
    # ... but kept privately.
    stored = SightingPhoto.objects.get(sighting_id=body["id"], position=1)
    assert stored.exif["make"] == "TestPhone" and stored.gps is not None


def test_a_retried_upload_creates_one_sighting_and_a_changed_one_is_a_conflict(observer_api, taxa):
    key = new_key()
    sent = photo_bytes(5, gps=None)  # the phone sends the very same bytes again

    def same_photo():
        return [SimpleUploadedFile("p.jpg", sent, content_type="image/jpeg")]

    first = post_sighting(
        observer_api, taxa["Ardea alba"], client_uuid=key, observed_at=None, photos=same_photo()
    )
    again = post_sighting(
        observer_api, taxa["Ardea alba"], client_uuid=key, observed_at=None, photos=same_photo()
    )
    assert first.status_code == 201 and again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"]
    assert Sighting.objects.count() == 1
    before = nothing_written()
    other = post_sighting(
        observer_api, taxa["Ardea cinerea"], client_uuid=key, observed_at=None, photos=same_photo()
    )
    assert_error(other, 409, "idempotency_conflict")
    assert nothing_written() == before
    # Another person may use the same UUID: keys are per observer.
    elsewhere = post_sighting(client_for(UserFactory()), taxa["Ardea alba"], client_uuid=key)
    assert elsewhere.status_code == 201


def test_exif_time_and_gps_fill_what_the_client_left_empty(observer_api, taxa):
    taken = timezone.now() - timedelta(days=1, hours=3)
    response = post_sighting(
        observer_api,
        taxa["Ardea alba"],
        latitude=None,
        longitude=None,
        observed_at=None,
        photos=[photo_file(3, taken_at=taken, gps=(LAT, LON))],
    )
    assert response.status_code == 201, response.content
    sighting = Sighting.objects.get(pk=response.json()["id"])
    assert abs((sighting.observed_at - taken).total_seconds()) < 1
    assert sighting.location.y == pytest.approx(LAT, abs=1e-5)
    assert sighting.location.x == pytest.approx(LON, abs=1e-5)


def test_gcj02_coordinates_are_converted_to_wgs84(observer_api, taxa):
    gcj_lon, gcj_lat = wgs84_to_gcj02(TRUE_LON, TRUE_LAT)
    assert abs(gcj_lon - TRUE_LON) > 0.003  # several hundred metres apart in Wuhan
    response = post_sighting(
        observer_api,
        taxa["Ardea alba"],
        latitude=gcj_lat,
        longitude=gcj_lon,
        coordinate_system="gcj02",
    )
    assert response.status_code == 201, response.content
    sighting = Sighting.objects.get(pk=response.json()["id"])
    assert sighting.location.x == pytest.approx(TRUE_LON, abs=1e-6)
    assert sighting.location.y == pytest.approx(TRUE_LAT, abs=1e-6)


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"latitude": 91}, 400, "invalid"),
        ({"longitude": -180.5}, 400, "invalid"),
        ({"latitude": "nan"}, 400, "invalid"),
        ({"longitude": None}, 400, "invalid"),  # latitude without longitude
        ({"accuracy_m": -1}, 400, "invalid"),
        ({"count": 0}, 400, "invalid"),
        ({"coordinate_system": "bd09"}, 400, "invalid"),
        ({"observed_at": "2999-01-01T00:00:00+08:00"}, 400, "observed_in_future"),
        ({"taxon": 987654}, 400, "unknown_taxon"),
        ({"photos": []}, 400, "invalid"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(observer_api, taxa, fields, status, code):
    before = nothing_written()
    form_taxon = None if "taxon" in fields else taxa["Ardea alba"]
    response = post_sighting(observer_api, form_taxon, **fields)
    assert_error(response, status, code)
    assert nothing_written() == before


def test_six_photos_not_images_and_oversized_photos_are_refused(observer_api, taxa, settings):
    before = nothing_written()
    six = [photo_file(i) for i in range(6)]
    assert_error(post_sighting(observer_api, taxa["Ardea alba"], photos=six), 400, "invalid")
    html = photo_file(1)
    html.file = io.BytesIO(b"<html>not a photo</html>")
    html.size = 24
    bad = post_sighting(observer_api, taxa["Ardea alba"], photos=[photo_file(1), html])
    assert_error(bad, 400, "not_an_image")
    bomb = photo_file(1)
    bomb.file = io.BytesIO(png_header_only(20000, 20000))
    bomb.size = len(bomb.file.getvalue())
    assert_error(
        post_sighting(observer_api, taxa["Ardea alba"], photos=[bomb]), 400, "image_too_large"
    )
    settings.PHOTO_MAX_BYTES = 1000
    assert_error(post_sighting(observer_api, taxa["Ardea alba"]), 413, "photo_too_large")
    assert nothing_written() == before


def test_a_photo_already_used_in_another_sighting_is_flagged(observer_api, taxa):
    first = post_sighting(observer_api, taxa["Ardea alba"], seed=7)
    assert first.status_code == 201
    thief = client_for(UserFactory())
    copied = post_sighting(thief, taxa["Ardea alba"], seed=7)
    assert copied.status_code == 201, copied.content
    body = copied.json()
    assert body["photos"][0]["duplicate"] is True
    flag = Flag.objects.get(sighting_id=body["id"])
    assert flag.reason == Flag.Reason.DUPLICATE_PHOTO and flag.status == Flag.Status.OPEN
    fresh = post_sighting(thief, taxa["Ardea alba"], seed=8)
    assert fresh.json()["photos"][0]["duplicate"] is False


def test_my_sightings_list_shows_my_true_points_only_to_me(observer_api, taxa):
    post_sighting(observer_api, taxa["Ciconia boyciana"])
    listed = observer_api.get("/api/v1/biodiversity/sightings")
    assert listed.status_code == 200
    [mine] = listed.json()["results"]
    assert mine["true_location"]["latitude"] == pytest.approx(TRUE_LAT)
    assert client_for(UserFactory()).get("/api/v1/biodiversity/sightings").json()["results"] == []
