"""Photo evidence: upload over HTTP, format and size checks, EXIF, metadata-free storage,
duplicate detection across residents, owner-only access, and cleanup on failure."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pillow_heif
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageCms

from carbon.adapters.photo import duplicates, images, storage
from carbon.adapters.photo.models import ClaimPhoto, PhotoHashBand
from carbon.adapters.photo.verifier import PhotoVerifier
from carbon.models import Claim, ClaimStatus, Transfer
from carbon.services.claims import claim_review, claim_submit
from tests.carbon.api_helpers import assert_error, client_for, new_key, steps_of
from tests.carbon.factories import UserFactory
from tests.carbon.photo_samples import (
    LAT,
    LON,
    encode,
    exif_for,
    photo_bytes,
    picture,
    png_header_only,
    stored_photo_with_hash,
    upload,
)

pytestmark = pytest.mark.django_db

CLAIMS = "/api/v1/claims"


def media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def state(settings) -> tuple:
    """What a refused upload must leave as it was."""
    return (
        Claim.objects.count(),
        ClaimPhoto.objects.count(),
        PhotoHashBand.objects.count(),
        Transfer.objects.count(),
        media_files(settings),
    )


def verification(body: dict) -> dict:
    return steps_of(body)["verification"]


def heif_can_encode() -> bool:
    return bool(pillow_heif.libheif_info().get("HEIF"))


# --- a photo that passes ----------------------------------------------------------------


def test_phone_photo_is_credited_at_the_photo_weight(
    auth_api, resident, own_bag, settings, ledger_is_consistent
):
    taken = timezone.now() - timedelta(hours=2)

    response = upload(auth_api, photo_bytes(1, taken_at=taken))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "credited"
    assert body["evidence_type"] == "photo"
    # 2 uses x 5 g = 10 g; a photo weighs 80%.
    assert body["credited_g"] == 8
    steps = steps_of(body)
    assert steps["verification"]["code"] == "photo_checked"
    assert steps["verification"]["tier"] == "photo"
    assert steps["tier_weight"]["weight_percent"] == 80
    claim = Claim.objects.get(pk=body["id"])
    photo = claim.photo
    assert abs(photo.taken_at - taken) < timedelta(seconds=1)
    assert photo.original_format == "JPEG"
    # GPS is kept for reviewers, never on the claim the resident's receipts and exports show.
    assert photo.gps is not None
    assert photo.gps.x == pytest.approx(LON, abs=1e-4) and photo.gps.y == pytest.approx(
        LAT, abs=1e-4
    )
    assert set(claim.evidence) == {
        "sha256",
        "phash",
        "format",
        "width",
        "height",
        "bytes",
        "taken_at",
    }
    assert "gps" not in json.dumps(body) and str(round(LAT, 2)) not in json.dumps(body)
    assert photo.bands.count() == len(duplicates.hash_bands(0))
    ledger_is_consistent()


def test_stored_and_served_images_carry_no_metadata(auth_api, resident, own_bag, settings):
    img = picture(2, (3000, 2000))
    exif = exif_for(timezone.now() - timedelta(hours=1), gps=(LAT, LON), orientation=6)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(img, "JPEG", exif, icc_profile=srgb, comment=b"owner: Zhang San")
    assert b"TestPhone" in data and b"Zhang San" in data

    response = upload(auth_api, data)

    assert response.status_code == 201, response.content
    photo = ClaimPhoto.objects.get(claim_id=response.json()["id"])
    stored = photo.image.open("rb").read()
    for blob in (stored, photo.thumbnail.open("rb").read()):
        assert b"Exif" not in blob and b"TestPhone" not in blob and b"Zhang San" not in blob
        with Image.open(io.BytesIO(blob)) as out:
            assert out.format == "JPEG"
            assert not out.getexif()
            assert not {"exif", "icc_profile", "comment", "xmp"} & set(out.info)
    with Image.open(io.BytesIO(stored)) as out:
        # Orientation 6 (rotate 90) applied, then scaled to at most 2048 px.
        assert out.size == (1365, 2048)
        assert (photo.width, photo.height) == (1365, 2048)
    with Image.open(photo.thumbnail.path) as thumb:
        assert max(thumb.size) == 320
    # The original size is what was uploaded.
    assert response.json()["receipt"]["steps"][0]["outcome"] == "verified"
    assert photo.claim.evidence["width"] == 3000 and photo.claim.evidence["height"] == 2000

    served = auth_api.get(f"{CLAIMS}/{photo.claim_id}/photo")
    assert served.status_code == 200
    assert served["Content-Type"] == "image/jpeg"
    assert "private" in served["Cache-Control"]
    assert b"".join(served.streaming_content) == stored
    thumb = auth_api.get(f"{CLAIMS}/{photo.claim_id}/thumbnail", HTTP_ACCEPT="image/*")
    assert thumb.status_code == 200
    assert b"".join(thumb.streaming_content) == photo.thumbnail.open("rb").read()


@pytest.mark.parametrize(
    ("fmt", "name", "content_type", "stored_format"),
    [
        ("PNG", "photo.jpg", "image/jpeg", "PNG"),  # a PNG that says it is a JPEG
        ("JPEG", "photo.png", "image/png", "JPEG"),  # a JPEG renamed .png
        ("WEBP", "photo.webp", "image/webp", "WEBP"),
        (
            "MPO",
            "IMG_0001.JPG",
            "image/jpeg",
            "JPEG",
        ),  # a phone JPEG with a multi-picture extension
        ("HEIF", "IMG_0002.HEIC", "image/heic", "HEIF"),
    ],
)
def test_formats_are_read_from_the_content(
    auth_api, own_bag, fmt, name, content_type, stored_format
):
    if fmt == "HEIF" and not heif_can_encode():
        pytest.skip("the installed pillow-heif has no HEIF encoder to make a test photo")

    response = upload(auth_api, photo_bytes(3, fmt), name=name, content_type=content_type)

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "credited"
    photo = ClaimPhoto.objects.get(claim_id=response.json()["id"])
    assert photo.original_format == stored_format
    assert photo.taken_at is not None and photo.gps is not None
    with Image.open(photo.image.path) as out:
        assert out.format == "JPEG" and not out.getexif()


# --- refused uploads: a 4xx and nothing written -----------------------------------------


def _truncated_jpeg() -> bytes:
    data = photo_bytes(4)
    return data[: len(data) // 2]


def _gif() -> bytes:
    out = io.BytesIO()
    picture(5).convert("P").save(out, "GIF")
    return out.getvalue()


BAD_UPLOADS = {
    "text named photo.jpg": (
        lambda: b"just some text, not a picture\n" * 20,
        "photo.jpg",
        "image/jpeg",
        400,
        "not_an_image",
    ),
    "html sent as image/png": (
        lambda: b"<html><body><img src=x onerror=alert(1)></body></html>",
        "photo.png",
        "image/png",
        400,
        "not_an_image",
    ),
    "gif": (_gif, "photo.gif", "image/gif", 400, "not_an_image"),
    "truncated jpeg": (_truncated_jpeg, "photo.jpg", "image/jpeg", 400, "not_an_image"),
    "png bomb header 100000x100000": (
        lambda: png_header_only(100_000, 100_000),
        "bomb.png",
        "image/png",
        400,
        "image_too_large",
    ),
    "png header 7000x7000 (49 MP)": (
        lambda: png_header_only(7000, 7000),
        "big.png",
        "image/png",
        400,
        "image_too_large",
    ),
    "capture time in the future": (
        lambda: photo_bytes(6, taken_at=timezone.now() + timedelta(days=1)),
        "photo.jpg",
        "image/jpeg",
        400,
        "capture_time_in_future",
    ),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_uploads_are_refused_and_nothing_is_written(auth_api, own_bag, settings, case):
    make, name, content_type, status, code = BAD_UPLOADS[case]
    before = state(settings)

    response = upload(auth_api, make(), name=name, content_type=content_type)

    assert_error(response, status, code)
    assert state(settings) == before
    assert before[-1] == []


def test_a_tiny_file_with_too_many_pixels_is_refused(auth_api, own_bag, settings):
    settings.PHOTO_MAX_PIXELS = 1_000_000
    data = encode(Image.new("L", (1200, 1000)), "PNG")
    assert len(data) < 10_000
    before = state(settings)

    response = upload(auth_api, data, name="flat.png", content_type="image/png")

    error = assert_error(response, 400, "image_too_large")
    assert error["details"]["width"] == 1200 and error["details"]["max_pixels"] == 1_000_000
    assert state(settings) == before


def test_an_oversized_file_is_refused_with_413(auth_api, own_bag, settings):
    settings.PHOTO_MAX_BYTES = 20_000
    noise = Image.effect_noise((600, 600), 100).convert("RGB")
    data = encode(noise, "JPEG", exif_for(timezone.now()), quality=95)
    assert len(data) > 20_000
    before = state(settings)

    response = upload(auth_api, data)

    error = assert_error(response, 413, "photo_too_large")
    assert error["details"]["max_bytes"] == 20_000
    assert state(settings) == before


def test_photo_evidence_takes_exactly_one_photo_file(auth_api, own_bag, settings):
    before = state(settings)
    no_file = auth_api.post(
        CLAIMS,
        {
            "behaviour": "own-bag",
            "quantity": 1,
            "idempotency_key": new_key(),
            "evidence": {"type": "photo"},
        },
        format="json",
    )
    assert_error(no_file, 400, "evidence_not_accepted")
    two_files = auth_api.post(
        CLAIMS,
        {
            "behaviour": "own-bag",
            "quantity": 1,
            "idempotency_key": new_key(),
            "photo": SimpleUploadedFile("a.jpg", photo_bytes(7), content_type="image/jpeg"),
            "other": SimpleUploadedFile("b.jpg", photo_bytes(8), content_type="image/jpeg"),
        },
        format="multipart",
    )
    assert_error(two_files, 400, "evidence_not_accepted")
    wrong_field = auth_api.post(
        CLAIMS,
        {
            "behaviour": "own-bag",
            "quantity": 1,
            "idempotency_key": new_key(),
            "picture": SimpleUploadedFile("a.jpg", photo_bytes(7), content_type="image/jpeg"),
        },
        format="multipart",
    )
    assert_error(wrong_field, 400, "evidence_not_accepted")
    unknown = upload(auth_api, photo_bytes(7), evidence=json.dumps({"type": "photo", "lat": 1}))
    assert_error(unknown, 400, "evidence_not_accepted")
    assert state(settings) == before


# --- capture time -----------------------------------------------------------------------


def test_a_photo_taken_before_the_claim_window_is_refused_with_the_reason(auth_api, own_bag):
    taken = timezone.now() - timedelta(days=own_bag.claim_window_days + 2)

    response = upload(auth_api, photo_bytes(9, taken_at=taken))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "rejected" and body["credited_g"] == 0
    assert body["receipt"]["code"] == "capture_time_outside_window"
    assert "within the last 3 days" in body["receipt"]["reason"]
    assert verification(body)["facts"]["taken_at"]
    assert Transfer.objects.count() == 0
    # Kept for a reviewer, should the resident appeal.
    assert ClaimPhoto.objects.filter(claim_id=body["id"]).exists()


def test_capture_time_uses_the_exif_offset_or_else_the_city_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    now = timezone.now()
    # Twelve hours ago in the city, so the same wall-clock time at +02:00 is still past.
    wall = timezone.localtime(now - timedelta(hours=12)).replace(microsecond=0, tzinfo=None)

    def taken(**kw):
        img = Image.open(io.BytesIO(encode(picture(10), "JPEG", exif_for(wall, **kw))))
        return images.photo_metadata(img=img, now=now)[0]

    with_offset = taken(offset="+02:00")
    assert with_offset.utcoffset() == timedelta(hours=2)
    assert with_offset.replace(tzinfo=None) == wall
    city = taken(offset=None)
    assert city.utcoffset() == timedelta(hours=8)
    assert city.replace(tzinfo=None) == wall


def test_unreadable_or_missing_capture_time_counts_as_none():
    now = timezone.now()
    exif = exif_for(None)
    exif.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"
    img = Image.open(io.BytesIO(encode(picture(11), "JPEG", exif)))
    assert images.photo_metadata(img=img, now=now)[0] is None
    bare = Image.open(io.BytesIO(encode(picture(11), "PNG")))
    assert images.photo_metadata(img=bare, now=now) == (None, None, {})


def test_gps_south_and_west_are_negative():
    exif = exif_for(timezone.now(), gps=(-33.8568, -70.6483))
    img = Image.open(io.BytesIO(encode(picture(12), "JPEG", exif)))
    _, gps, summary = images.photo_metadata(img=img, now=timezone.now())
    assert gps.y == pytest.approx(-33.8568, abs=1e-4) and gps.x == pytest.approx(-70.6483, abs=1e-4)
    assert summary["gps"]["lat"] == pytest.approx(-33.8568, abs=1e-4)


def test_no_capture_time_goes_to_review_and_approval_credits_at_the_photo_weight(
    auth_api, resident, own_bag, ledger_is_consistent
):
    reviewer = UserFactory(is_staff=True)
    data = encode(picture(13), "JPEG")  # no EXIF at all

    response = upload(auth_api, data)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "needs_review"
    assert body["receipt"]["code"] == "no_capture_time"
    assert Transfer.objects.count() == 0

    claim = claim_review(
        claim_id=body["id"], reviewer=reviewer, approve=True, note="Bag visible at the till."
    )

    assert claim.status == ClaimStatus.CREDITED
    assert claim.credited_g == 8
    steps = steps_of(claim)
    assert steps["tier_weight"]["tier"] == "photo" and steps["tier_weight"]["weight_percent"] == 80
    assert claim.receipt["history"][-1]["note"] == "Bag visible at the till."
    assert claim.award.amount_g == 8
    ledger_is_consistent()


# --- duplicates -------------------------------------------------------------------------


def test_the_same_photo_from_another_resident_is_refused_with_the_reason(
    resident, other_resident, own_bag, ledger_is_consistent
):
    data = photo_bytes(14)
    first = upload(client_for(resident), data)
    assert first.json()["status"] == "credited"

    second = upload(client_for(other_resident), data)

    assert second.status_code == 201, second.content
    body = second.json()
    assert body["status"] == "rejected" and body["credited_g"] == 0
    assert body["receipt"]["code"] == "duplicate_photo"
    # Only that it is a duplicate: neither the other claim nor who made it.
    assert verification(body)["facts"] == {"duplicate": True}
    assert "duplicate" in body["receipt"]["reason"]
    text = json.dumps(body)
    for secret in (first.json()["id"], resident.email, str(resident.public_id)):
        assert secret not in text
    # Reviewers still see which photo it copies.
    assert ClaimPhoto.objects.get(claim_id=body["id"]).review_facts == {
        "duplicate_of_claim": first.json()["id"],
        "distance": 0,
        "same_file": True,
        "transform": "identity",
    }
    assert Transfer.objects.filter(claim__isnull=False).count() == 1
    ledger_is_consistent()


def test_a_resized_recompressed_copy_is_caught(resident, other_resident, own_bag):
    original = photo_bytes(15, size=(1600, 1200))
    upload(client_for(resident), original)
    with Image.open(io.BytesIO(original)) as img:
        exif = img.getexif()
        smaller = img.resize((1120, 840))
        copy = encode(smaller, "JPEG", exif, quality=60)

    response = upload(client_for(other_resident), copy)

    body = response.json()
    assert body["status"] in ("rejected", "needs_review"), body
    assert body["receipt"]["code"] in ("duplicate_photo", "possible_duplicate_photo")
    assert ClaimPhoto.objects.get(claim_id=body["id"]).review_facts["same_file"] is False
    assert body["credited_g"] == 0


@pytest.mark.parametrize("turn", sorted(images.SYMMETRIES))
def test_a_mirrored_flipped_rotated_or_transposed_copy_is_caught(
    resident, other_resident, own_bag, turn
):
    original = picture(60, (960, 640))
    first = upload(client_for(resident), encode(original, "JPEG", exif_for(timezone.now())))
    assert first.json()["status"] == "credited"
    turned = original.transpose(images.SYMMETRIES[turn])
    copy = encode(turned, "JPEG", exif_for(timezone.now() - timedelta(minutes=5)), quality=75)

    response = upload(client_for(other_resident), copy)

    body = response.json()
    assert response.status_code == 201, body
    assert body["status"] == "rejected" and body["credited_g"] == 0, body["receipt"]
    assert body["receipt"]["code"] == "duplicate_photo"
    assert verification(body)["facts"] == {"duplicate": True}
    assert first.json()["id"] not in json.dumps(body)
    facts = ClaimPhoto.objects.get(claim_id=body["id"]).review_facts
    assert facts["duplicate_of_claim"] == first.json()["id"] and facts["transform"] != "identity"
    # What is stored is the copy's own hash, as sent: only the search looks at its turns.
    assert (
        ClaimPhoto.objects.get(claim_id=body["id"]).phash
        == f"{images.photo_inspect(data=copy).phash:016x}"
    )


def test_a_different_picture_is_not_a_duplicate_in_any_orientation(
    resident, other_resident, own_bag
):
    upload(client_for(resident), photo_bytes(62))
    for seed, turn in enumerate(images.SYMMETRIES.values(), start=70):
        other = encode(picture(seed).transpose(turn), "JPEG", exif_for(timezone.now()))
        body = upload(client_for(other_resident), other).json()
        # (the own-bag daily cap may stop the crediting; the photo itself passed)
        assert verification(body)["code"] == "photo_checked", body["receipt"]


def test_a_possible_duplicate_sent_to_review_names_no_other_claim(
    auth_api, other_resident, own_bag
):
    data = photo_bytes(64)
    phash = images.photo_inspect(data=data).phash
    earlier = stored_photo_with_hash(
        other_resident, own_bag, phash ^ 0b1000000001000000001000000001
    )

    body = upload(auth_api, data).json()

    assert body["receipt"]["code"] == "possible_duplicate_photo"
    assert "duplicate" in body["receipt"]["reason"]
    assert str(earlier.pk) not in json.dumps(body)
    detail = auth_api.get(f"{CLAIMS}/{body['id']}").json()
    assert str(earlier.pk) not in json.dumps(detail)


@pytest.mark.parametrize(
    ("bits", "status", "code"),
    [
        (2, "rejected", "duplicate_photo"),
        (4, "needs_review", "possible_duplicate_photo"),
        (6, "needs_review", "possible_duplicate_photo"),
        (7, "credited", "credited"),
    ],
)
def test_hash_distance_decides_between_refusal_review_and_credit(
    auth_api, other_resident, own_bag, bits, status, code
):
    data = photo_bytes(16)
    phash = images.photo_inspect(data=data).phash
    # Flip bits spread over the hash, so they fall in different bands.
    mask = sum(1 << (i * 9) for i in range(bits))
    earlier = stored_photo_with_hash(other_resident, own_bag, phash ^ mask)

    body = upload(auth_api, data).json()

    assert body["status"] == status, body["receipt"]
    assert body["receipt"]["code"] == code
    if bits <= 6:
        assert verification(body)["facts"] == {"duplicate": True}
        assert str(earlier.pk) not in json.dumps(body)
        assert ClaimPhoto.objects.get(claim_id=body["id"]).review_facts == {
            "duplicate_of_claim": str(earlier.pk),
            "distance": bits,
            "same_file": False,
            "transform": "identity",
        }


def test_photos_older_than_the_lookback_are_not_duplicates(
    resident, other_resident, own_bag, settings
):
    data = photo_bytes(17)
    first = upload(client_for(resident), data).json()
    ClaimPhoto.objects.filter(claim_id=first["id"]).update(
        uploaded_at=timezone.now() - timedelta(days=settings.PHOTO_DUPLICATE_LOOKBACK_DAYS + 1)
    )

    second = upload(client_for(other_resident), data).json()

    assert second["status"] == "credited", second["receipt"]


def test_a_retry_returns_the_original_and_a_new_key_is_a_duplicate(
    auth_api, own_bag, settings, ledger_is_consistent
):
    data = photo_bytes(18)
    key = new_key()
    first = upload(auth_api, data, key=key)
    files = media_files(settings)

    retry = upload(auth_api, data, key=key)
    again = upload(auth_api, data)

    assert first.status_code == 201 and retry.status_code == 200
    assert retry.json()["id"] == first.json()["id"]
    assert again.json()["receipt"]["code"] == "duplicate_photo"
    assert Claim.objects.count() == 2 and ClaimPhoto.objects.count() == 2
    assert Transfer.objects.filter(claim__isnull=False).count() == 1
    assert len(media_files(settings)) == len(files) + 2  # the refused copy is kept for review
    ledger_is_consistent()


@given(
    phash=st.integers(0, 2**64 - 1),
    distance=st.integers(0, 16),
    flips=st.lists(st.integers(0, 63), max_size=16, unique=True),
)
def test_a_hash_within_the_distance_has_a_band_among_the_probes(phash, distance, flips):
    """Multi-index hashing: some stored band of a hash within the distance is among the
    probes of the other (its own band values and those within the probe radius), so the
    index lookup cannot miss it; and the two always share a lock key."""
    other = phash
    for bit in flips[:distance]:
        other ^= 1 << bit
    probes = duplicates.hash_probes(phash, distance=distance)
    stored = duplicates.hash_bands(other, distance=distance)
    assert any(value in probes.get(key, ()) for key, value in stored)
    assert all(0 <= value < 2**31 for _, value in stored)
    locks = duplicates.lock_bands(phash, distance=distance)
    assert set(locks) & set(duplicates.lock_bands(other, distance=distance))


@pytest.mark.parametrize(
    ("bits", "status"),
    [
        # The worst case for a band lookup: the flips spread over every 16-bit band, so no
        # band is equal and the photo is found only through a probe within the radius.
        ((0, 16, 32, 48), "needs_review"),
        ((0, 1, 16, 17, 32, 48), "needs_review"),  # exactly the distance (6)
        ((0, 1, 16, 17, 32, 33, 48), "credited"),  # one bit beyond it
        ((0, 1, 2, 16, 17, 18, 32), "credited"),  # beyond, with a band equal
    ],
)
def test_the_distance_threshold_holds_when_no_band_is_equal(
    auth_api, other_resident, own_bag, settings, bits, status
):
    assert settings.PHOTO_DUPLICATE_DISTANCE == 6  # the masks are written for it
    data = photo_bytes(16)
    phash = images.photo_inspect(data=data).phash
    earlier = stored_photo_with_hash(other_resident, own_bag, phash ^ sum(1 << b for b in bits))

    body = upload(auth_api, data).json()

    assert body["status"] == status, body["receipt"]
    facts = ClaimPhoto.objects.get(claim_id=body["id"]).review_facts
    if status == "needs_review":
        assert facts["duplicate_of_claim"] == str(earlier.pk)
        assert facts["distance"] == len(bits)
    else:
        assert facts == {}


def test_bands_are_rebuilt_after_the_distance_changes(resident, other_resident, own_bag, settings):
    data = photo_bytes(19)
    upload(client_for(resident), data)
    settings.PHOTO_DUPLICATE_DISTANCE = 10

    assert duplicates.photo_hash_bands_rebuild() == 1

    # 4 bands of 16 bits probed within 2 bits at distance 10 (7 exact bands at 6 before)
    assert PhotoHashBand.objects.count() == len(duplicates.hash_bands(0)) == 4
    assert upload(client_for(other_resident), data).json()["receipt"]["code"] == "duplicate_photo"


# --- access -----------------------------------------------------------------------------


def test_only_the_owner_can_fetch_the_photo(resident, other_resident, own_bag, api):
    body = upload(client_for(resident), photo_bytes(20)).json()
    self_claim = (
        client_for(resident)
        .post(
            CLAIMS,
            {
                "behaviour": "own-bag",
                "quantity": 1,
                "idempotency_key": new_key(),
                "evidence": {"type": "self"},
            },
            format="json",
        )
        .json()
    )

    for path in (f"{CLAIMS}/{body['id']}/photo", f"{CLAIMS}/{body['id']}/thumbnail"):
        assert client_for(resident).get(path).status_code == 200
        assert_error(client_for(other_resident).get(path), 404, "not_found")
        assert_error(
            client_for(other_resident).get(path, HTTP_ACCEPT="image/jpeg"), 404, "not_found"
        )
        assert api.get(path).status_code == 401
    assert_error(client_for(resident).get(f"{CLAIMS}/{self_claim['id']}/photo"), 404, "not_found")


# --- failures leave nothing behind ------------------------------------------------------


def test_a_failure_while_storing_leaves_no_rows_and_no_files(
    resident, own_bag, settings, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(PhotoHashBand.objects, "bulk_create", broken)
    upload_file = SimpleUploadedFile("photo.jpg", photo_bytes(21), content_type="image/jpeg")

    with pytest.raises(RuntimeError):
        claim_submit(
            user=resident,
            behaviour_code="own-bag",
            quantity=1,
            idempotency_key=new_key(),
            evidence_type="photo",
            files={"photo": upload_file},
        )

    assert Claim.objects.count() == 0 and ClaimPhoto.objects.count() == 0
    assert media_files(settings) == []


def test_a_failure_after_verification_leaves_no_files(resident, own_bag, settings, monkeypatch):
    from carbon.services import claims

    def broken(**kwargs):
        raise RuntimeError("ledger unavailable")

    monkeypatch.setattr(claims, "_apply_rules", broken)
    upload_file = SimpleUploadedFile("photo.jpg", photo_bytes(22), content_type="image/jpeg")

    with pytest.raises(RuntimeError):
        claim_submit(
            user=resident,
            behaviour_code="own-bag",
            quantity=1,
            idempotency_key=new_key(),
            evidence_type="photo",
            files={"photo": upload_file},
        )

    assert Claim.objects.count() == 0
    assert media_files(settings) == []


def test_discard_removes_what_verify_wrote(resident, own_bag, settings):
    verifier = PhotoVerifier()
    prepared = verifier.prepare(
        user=resident,
        evidence={},
        files={
            "photo": SimpleUploadedFile("photo.jpg", photo_bytes(23), content_type="image/jpeg")
        },
    )
    claim = Claim.objects.create(
        user=resident,
        behaviour=own_bag,
        quantity=1,
        occurred_at=timezone.now(),
        evidence_type="photo",
        idempotency_key=new_key(),
        request_hash="-",
    )
    claim.submitted_at = timezone.now()
    verifier.verify(claim=claim, prepared=prepared)
    assert len(media_files(settings)) == 2

    verifier.discard(prepared=prepared)

    assert media_files(settings) == []


def test_orphan_files_are_purged_once_old(auth_api, own_bag, settings):
    kept = upload(auth_api, photo_bytes(24)).json()
    orphan_old = default_storage.save(
        "claims/2b0c6a3e-4b8e-4d1e-9a51-9a3f0f5e0c11/photo.jpg", io.BytesIO(b"x")
    )
    orphan_new = default_storage.save(
        "claims/7d7f3f0e-1c57-4a0a-b1c2-3f7a1a9e2b22/photo.jpg", io.BytesIO(b"x")
    )
    hour_ago = time.time() - 2 * 3600
    for path in media_files(settings):
        if str(orphan_new) not in str(path):
            os.utime(path, (hour_ago, hour_ago))

    assert storage.photo_orphans_purge(older_than=timedelta(hours=1)) == 1

    assert not default_storage.exists(orphan_old)
    assert default_storage.exists(orphan_new)
    photo = ClaimPhoto.objects.get(claim_id=kept["id"])
    assert default_storage.exists(photo.image.name) and default_storage.exists(photo.thumbnail.name)


def test_erasing_a_resident_deletes_their_photos_and_files(
    auth_api, resident, own_bag, settings, django_capture_on_commit_callbacks
):
    upload(auth_api, photo_bytes(25))
    other = upload(client_for(UserFactory()), photo_bytes(26)).json()

    with django_capture_on_commit_callbacks(execute=True):
        assert storage.photos_erase_for_user(user=resident) == 1

    assert list(ClaimPhoto.objects.values_list("claim_id", flat=True)) == [
        Claim.objects.get(pk=other["id"]).pk
    ]
    assert len(media_files(settings)) == 2


# --- concurrency (PostgreSQL) -----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_residents_sending_the_same_photo_at_once_earn_once(own_bag, monkeypatch):
    residents = [UserFactory(), UserFactory()]
    data = photo_bytes(27)
    both_verifying = threading.Barrier(2, timeout=10)
    original_verify = PhotoVerifier.verify

    def verify_together(self, *, claim, prepared):
        both_verifying.wait()  # both have passed prepare(); neither has searched yet
        return original_verify(self, claim=claim, prepared=prepared)

    monkeypatch.setattr(PhotoVerifier, "verify", verify_together)
    results, errors = {}, []

    def submit(user):
        try:
            claim, _ = claim_submit(
                user=user,
                behaviour_code="own-bag",
                quantity=1,
                idempotency_key=new_key(),
                evidence_type="photo",
                files={"photo": SimpleUploadedFile("p.jpg", data, content_type="image/jpeg")},
            )
            results[user.pk] = claim
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(u,)) for u in residents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert not errors, errors
    outcomes = sorted((c.status, c.receipt["code"]) for c in results.values())
    assert outcomes == [("credited", "credited"), ("rejected", "duplicate_photo")]
    assert Transfer.objects.filter(claim__isnull=False).count() == 1


def takeable_elsewhere(keys) -> list[bool]:
    """Whether another connection could take each advisory lock now (each let go at once:
    a transaction-scoped lock in autocommit)."""
    import psycopg

    signed = [k - (1 << 64) if k >= 1 << 63 else k for k in keys]
    with psycopg.connect(autocommit=True, **connection.get_connection_params()) as other:
        rows = other.execute(
            "SELECT pg_try_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS t(k)", [signed]
        ).fetchall()
    return [taken for (taken,) in rows]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_duplicate_lock_takes_every_band_of_every_turn_in_one_statement_until_commit(
    django_assert_num_queries,
):
    """Each band of each searched hash (the photo and its turns) is locked, in one
    statement, and held by the transaction: another connection can take none of them."""
    from django.db import transaction

    phash = 0x0123_4567_89AB_CDEF
    turns = {"mirror": 0xFEDC_BA98_7654_3210, "flip": 0x0F0F_0F0F_F0F0_F0F0}
    with transaction.atomic():
        with django_assert_num_queries(1):
            duplicates.photo_duplicate_lock(phash=phash, symmetry_hashes=turns)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT objid::bigint + (classid::bigint << 32) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
            held = {row[0] & 0xFFFF_FFFF_FFFF_FFFF for row in cursor.fetchall()}
        wanted = {
            int.from_bytes(
                hashlib.sha256(f"carbon.photo-band:{b}:{v}".encode()).digest()[:8],
                "big",
            )
            for h in (phash, *turns.values())
            for b, v in duplicates.lock_bands(h)
        }
        assert held == wanted and len(held) == 3 * len(duplicates.lock_bands(phash))
        assert takeable_elsewhere(wanted) == [False] * len(wanted)
    assert takeable_elsewhere(wanted) == [True] * len(wanted)


# --- the request-size guard in front of Django ------------------------------------------


def _asgi_call(app, *, path: str, chunks: list[bytes], content_length: int | None):
    headers = [(b"content-type", b"application/octet-stream")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": headers,
        "query_string": b"",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("1.2.3.4", 1),
        "root_path": "",
    }
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent, read = [], []

    async def receive():
        if messages:
            message = messages.pop(0)
            read.append(len(message["body"]))
            return message
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, sum(read)


def test_the_body_limit_refuses_before_the_app_reads_the_body():
    called = []

    async def app(scope, receive, send):
        called.append(scope["path"])
        while True:  # like Django: a disconnect aborts the request, with no response
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    from config.body_limit import RequestBodyLimit

    guard = RequestBodyLimit(app, max_bytes=1000)

    status, body, read = _asgi_call(
        guard, path="/api/v1/claims", chunks=[b"x" * 600] * 5, content_length=3000
    )
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"
    assert read == 0 and called == []
    # Chunked (no Content-Length): reading stops once the limit is passed.
    status, _, read = _asgi_call(
        guard, path="/api/v1/claims", chunks=[b"x" * 600] * 5, content_length=None
    )
    assert status == 413 and read == 1200
    # Under the limit, and other paths, go through.
    assert (
        _asgi_call(guard, path="/api/v1/claims", chunks=[b"x" * 600], content_length=600)[0] == 200
    )
    assert _asgi_call(guard, path="/admin/", chunks=[b"x" * 5000], content_length=5000)[0] == 200


@pytest.mark.django_db(transaction=True)
def test_the_body_limit_in_front_of_django(settings):
    from django.core.asgi import get_asgi_application

    from config.body_limit import RequestBodyLimit

    settings.PHOTO_MAX_BYTES = 10_000
    guard = RequestBodyLimit(get_asgi_application())

    status, body, read = _asgi_call(
        guard, path="/api/v1/claims", chunks=[b"x" * 500_000] * 4, content_length=None
    )

    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"
    assert read < 2_000_000


def test_a_big_jpeg_is_decoded_scaled_down_and_stored_at_most_2048_px():
    data = encode(picture(28, (4000, 3000)), "JPEG", exif_for(timezone.now() - timedelta(hours=1)))

    inspected = images.photo_inspect(data=data)

    with Image.open(io.BytesIO(inspected.image_jpeg)) as out:
        assert images.DRAFT_MIN_SIDE <= max(out.size) <= images.MAX_SIDE
        assert out.size == (2000, 1500)
    assert (inspected.width, inspected.height) == (4000, 3000)
    # The same picture at another size hashes (nearly) the same.
    small = images.photo_inspect(data=encode(picture(28, (4000, 3000)).resize((1000, 750)), "PNG"))
    assert (small.phash ^ inspected.phash).bit_count() <= duplicates.SAME_PICTURE_DISTANCE


def test_a_claim_without_occurred_at_takes_the_photos_capture_time(auth_api, own_bag):
    taken = (timezone.now() - timedelta(days=1)).replace(microsecond=0)

    response = upload(auth_api, photo_bytes(21, taken_at=taken))

    assert response.status_code == 201, response.content
    claim = Claim.objects.get(pk=response.json()["id"])
    # The daily cap counts the day of the act, not the day of the upload.
    assert claim.occurred_at == taken


def test_a_png_with_corrupt_pixel_data_is_not_an_image(auth_api, own_bag, settings):
    data = bytearray(photo_bytes(31, "PNG"))
    at = data.find(b"IDAT")
    data[at + 60] ^= 0xFF  # the header and EXIF still read; the pixels do not

    response = upload(auth_api, bytes(data), name="photo.png", content_type="image/png")

    assert_error(response, 400, "not_an_image")
    assert state(settings) == (0, 0, 0, 0, [])


def test_a_reset_camera_clock_counts_as_no_capture_time(auth_api, own_bag):
    from PIL import ExifTags

    img = Image.open(io.BytesIO(photo_bytes(32)))
    exif = Image.Exif()
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    ifd[ExifTags.Base.DateTimeOriginal] = "0001:01:01 00:00:00"
    ifd[ExifTags.Base.OffsetTimeOriginal] = "+14:00"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)

    response = upload(auth_api, buf.getvalue())

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "needs_review"
    assert response.json()["receipt"]["code"] == "no_capture_time"


def test_two_files_under_the_name_photo_are_refused(auth_api, own_bag, settings):
    payload = {
        "behaviour": "own-bag",
        "quantity": 1,
        "idempotency_key": new_key(),
        "photo": [
            SimpleUploadedFile("a.jpg", photo_bytes(33), content_type="image/jpeg"),
            SimpleUploadedFile("b.jpg", photo_bytes(34), content_type="image/jpeg"),
        ],
    }

    response = auth_api.post("/api/v1/claims", payload, format="multipart")

    error = assert_error(response, 400, "invalid")
    assert "photo" in error["details"]
    assert state(settings) == (0, 0, 0, 0, [])


def test_the_migration_moves_old_duplicate_facts_off_the_residents_receipt(
    resident, other_resident, own_bag
):
    import importlib

    from django.apps import apps

    migration = importlib.import_module(
        "carbon.migrations.0005_appeal_outcome_and_photo_review_facts"
    )
    earlier = stored_photo_with_hash(other_resident, own_bag, 0x1234)
    claim = stored_photo_with_hash(resident, own_bag, 0x1235)
    old_reason = (
        f"This photo was already used for another claim (claim {earlier.pk}) in the last "
        "180 days; a photo earns once."
    )
    claim.receipt = {
        "status": "rejected",
        "code": "duplicate_photo",
        "reason": old_reason,
        "steps": [
            {
                "step": "verification",
                "code": "duplicate_photo",
                "reason": old_reason,
                "facts": {"duplicate_of_claim": str(earlier.pk), "distance": 1, "same_file": False},
            }
        ],
        "history": [{"event": "appeal", "previous": {"reason": old_reason}}],
    }
    claim.save()

    migration.move_duplicate_facts(apps, None)

    claim.refresh_from_db()
    assert str(earlier.pk) not in json.dumps(claim.receipt)
    assert claim.receipt["steps"][0]["facts"] == {"duplicate": True}
    assert claim.receipt["reason"].startswith("This photo was already used for another claim in")
    assert claim.photo.review_facts == {
        "duplicate_of_claim": str(earlier.pk),
        "distance": 1,
        "same_file": False,
        "transform": "identity",
    }
