"""Erasing an account while one of its writes is in flight (a photo claim with a note, the
case that left the photo, its GPS point and the note behind): the erasure and the write
serialise on the resident's user row, so whatever the order nothing personal remains. The
write that comes second is refused with `account_closed` and writes nothing.

PostgreSQL runs the two with real threads, paused at the interesting moment; SQLite, which
has no row locks, runs the sequential case (the erasure lands between the photo's
inspection and the claim's transaction)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from django.core import serializers
from django.db import connection

from carbon import personal_data
from carbon.adapters.photo import images
from carbon.adapters.photo.models import ClaimPhoto, PhotoHashBand
from carbon.adapters.photo.verifier import PhotoVerifier
from carbon.errors import ErrorCode
from carbon.models import Claim, User
from carbon.personal_data import PersonalData
from carbon.services.people import user_erase
from tests.carbon.api_helpers import assert_error, client_for
from tests.carbon.factories import UserFactory
from tests.carbon.photo_samples import LAT, encode, photo_bytes, picture, upload

NOTE = "left it by flat 1204, Huanghelou Lane"
PASSWORD = "correct horse battery"  # tests.factories.UserFactory's


def send_photo_claim(user, seed: int):
    return upload(client_for(user), photo_bytes(seed), evidence=json.dumps({"note": NOTE}))


def erase_over_the_api(user):
    return client_for(user).delete("/api/v1/me", {"password": PASSWORD}, format="json")


def media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_nothing_personal_left(user, settings) -> None:
    user.refresh_from_db()
    assert user.erased_at is not None and not user.is_active
    assert not ClaimPhoto.objects.filter(claim__user=user).exists()
    assert not PhotoHashBand.objects.filter(photo__claim__user=user).exists()
    assert media_files(settings) == []
    dump = "\n".join(
        serializers.serialize("json", model._default_manager.all())
        for provider in personal_data.providers()
        for model in provider.models
    )
    assert NOTE not in dump
    assert str(LAT) not in dump  # the photo's GPS point


def in_thread(work, results: dict, name: str) -> threading.Thread:
    def run():
        try:
            results[name] = work()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            results[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def blocked_on_a_lock(thread: threading.Thread, timeout: float = 10) -> bool:
    """True once some session of this test database waits for a lock; False if `thread`
    ended (or time ran out) without that: the two did not serialise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and thread.is_alive():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.05)
    return False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_erasure_during_an_upload_waits_and_then_erases_what_it_wrote(
    own_bag, monkeypatch, settings
):
    resident = UserFactory()
    stored, go_on = threading.Event(), threading.Event()
    verify = PhotoVerifier.verify

    def verify_then_pause(self, *, claim, prepared):
        verdict = verify(self, claim=claim, prepared=prepared)  # photo, GPS and files written
        stored.set()
        go_on.wait(30)
        return verdict

    monkeypatch.setattr(PhotoVerifier, "verify", verify_then_pause)
    results: dict = {}

    uploading = in_thread(lambda: send_photo_claim(resident, 80), results, "upload")
    assert stored.wait(30), results
    erasing = in_thread(lambda: erase_over_the_api(resident), results, "erase")
    waited = blocked_on_a_lock(erasing)
    go_on.set()
    uploading.join(30)
    erasing.join(30)

    assert not uploading.is_alive() and not erasing.is_alive()
    assert waited, "the erasure did not wait for the upload's transaction"
    assert results["upload"].status_code == 201, results["upload"].content
    assert results["erase"].status_code == 204, results["erase"].content
    assert_nothing_personal_left(resident, settings)
    # The claim stays (the ledger refers to it), without its evidence.
    claim = Claim.objects.get(user=resident)
    assert claim.evidence == {} and NOTE not in json.dumps(claim.receipt)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_upload_during_an_erasure_waits_and_is_refused(own_bag, settings):
    resident = UserFactory()
    erasing_now, go_on = threading.Event(), threading.Event()

    def pause(*, user):
        erasing_now.set()  # the photos' eraser has run; the erasure has not committed
        go_on.wait(30)

    # Registered last, so it runs after every real eraser.
    personal_data.register(PersonalData("race_pause", (User,), lambda *, user: None, pause))
    results: dict = {}
    try:
        erasing = in_thread(lambda: user_erase(user=resident), results, "erase")
        assert erasing_now.wait(30), results
        uploading = in_thread(lambda: send_photo_claim(resident, 81), results, "upload")
        waited = blocked_on_a_lock(uploading)
        go_on.set()
        erasing.join(30)
        uploading.join(60)
    finally:
        go_on.set()
        personal_data.unregister("race_pause")

    assert not uploading.is_alive() and not erasing.is_alive()
    assert waited, "the upload did not wait for the erasure's transaction"
    assert results["erase"] is None
    assert_error(results["upload"], 409, ErrorCode.ACCOUNT_CLOSED)
    assert not Claim.objects.filter(user=resident).exists()
    assert_nothing_personal_left(resident, settings)


@pytest.mark.django_db
def test_an_erasure_between_the_photos_inspection_and_the_claim_refuses_the_claim(
    own_bag, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """The photo is inspected before the claim's transaction starts; an erasure that commits
    in between must find nothing, and the claim must then write nothing."""
    resident = UserFactory()
    inspect = images.photo_inspect

    def inspect_then_erase(**kwargs):
        inspected = inspect(**kwargs)
        response = erase_over_the_api(resident)
        assert response.status_code == 204, response.content
        return inspected

    monkeypatch.setattr(images, "photo_inspect", inspect_then_erase)

    with django_capture_on_commit_callbacks(execute=True):
        response = send_photo_claim(resident, 82)

    assert_error(response, 409, ErrorCode.ACCOUNT_CLOSED)
    assert not Claim.objects.filter(user=resident).exists()
    assert_nothing_personal_left(resident, settings)


@pytest.mark.django_db
def test_a_closed_accounts_writes_are_refused_and_its_claims_cannot_be_credited(
    own_bag, resident, django_user_model
):
    from carbon.services.claims import claim_review

    client = client_for(resident)
    waiting = upload(client, encode(picture(83), "JPEG")).json()
    assert waiting["status"] == "needs_review"  # no capture time: a reviewer decides
    resident.is_active = False
    resident.save(update_fields=["is_active"])
    reviewer = django_user_model.objects.create_user(email="rev@example.org", password="x" * 12)

    assert_error(send_photo_claim(resident, 84), 409, ErrorCode.ACCOUNT_CLOSED)
    assert_error(
        client.patch("/api/v1/me", {"display_name": "New"}, format="json"),
        409,
        ErrorCode.ACCOUNT_CLOSED,
    )
    assert_error(client.put("/api/v1/me/consents/transit_card"), 409, ErrorCode.ACCOUNT_CLOSED)
    with pytest.raises(Exception) as refused:
        claim_review(claim_id=waiting["id"], reviewer=reviewer, approve=True)
    assert getattr(refused.value, "code", None) == ErrorCode.ACCOUNT_CLOSED
    rejected = claim_review(claim_id=waiting["id"], reviewer=reviewer, approve=False)
    assert rejected.status == "rejected"
