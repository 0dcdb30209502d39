"""The photo moderation queue in the admin: thumbnails for staff only, approve / reject
with a reason through claim_review, and the same ledger as everything else."""

from __future__ import annotations

import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from PIL import Image

from carbon.adapters.photo import images
from carbon.adapters.photo.models import ClaimPhoto
from carbon.models import Claim, ClaimStatus, Transfer
from tests.carbon.api_helpers import client_for
from tests.carbon.factories import UserFactory, catalogue_behaviour
from tests.carbon.photo_samples import (
    encode,
    photo_bytes,
    picture,
    stored_photo_with_hash,
    upload,
)

pytestmark = pytest.mark.django_db

QUEUE = "/admin/carbon/claimphoto/"


@pytest.fixture
def queue(resident, other_resident, own_bag):
    """One own-bag photo waiting for review (no capture time); on another behaviour, so the
    own-bag daily cap stays free: one credited photo and one possible copy of an earlier one."""
    bamboo = catalogue_behaviour("bamboo")  # 20 g an item, photo evidence only
    waiting = upload(client_for(resident), encode(picture(31), "JPEG")).json()
    credited = upload(client_for(resident), photo_bytes(32), behaviour="bamboo").json()
    data = photo_bytes(33)
    stored_photo_with_hash(
        resident, bamboo, images.photo_inspect(data=data).phash ^ 0b1000000001000000001111
    )
    suspect = upload(client_for(other_resident), data, behaviour="bamboo").json()
    assert waiting["status"] == "needs_review" and credited["status"] == "credited"
    assert suspect["receipt"]["code"] == "possible_duplicate_photo"
    return {
        "waiting": ClaimPhoto.objects.get(claim_id=waiting["id"]),
        "credited": ClaimPhoto.objects.get(claim_id=credited["id"]),
        "suspect": ClaimPhoto.objects.get(claim_id=suspect["id"]),
    }


def thumbnail_url(photo: ClaimPhoto) -> str:
    return reverse("admin:carbon_claimphoto_thumbnail", args=[photo.pk])


def test_the_queue_lists_photo_claims_that_need_review_with_thumbnails(admin_client, queue):
    response = admin_client.get(QUEUE)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Photo moderation queue" in page
    assert thumbnail_url(queue["waiting"]) in page
    assert thumbnail_url(queue["credited"]) not in page
    everything = admin_client.get(QUEUE, {"queue": "all"}).content.decode()
    assert thumbnail_url(queue["credited"]) in everything


def test_staff_get_the_images_through_the_admin(admin_client, queue):
    photo = queue["waiting"]
    for url in (thumbnail_url(photo), reverse("admin:carbon_claimphoto_image", args=[photo.pk])):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        with Image.open(io.BytesIO(b"".join(response.streaming_content))) as img:
            assert img.format == "JPEG"


def test_the_detail_page_shows_the_image_private_gps_and_the_photo_it_may_copy(admin_client, queue):
    suspect = queue["suspect"]
    # Which photo it may copy is kept where only staff look, never on the resident's receipt.
    original = ClaimPhoto.objects.get(claim_id=suspect.review_facts["duplicate_of_claim"])
    assert "duplicate_of_claim" not in str(suspect.claim.receipt)

    page = admin_client.get(
        reverse("admin:carbon_claimphoto_change", args=[suspect.pk])
    ).content.decode()

    assert reverse("admin:carbon_claimphoto_image", args=[suspect.pk]) in page
    assert thumbnail_url(original) in page
    assert "30.544700, 114.302500" in page


def test_the_queue_and_images_are_closed_to_everyone_else(queue):
    photo = queue["waiting"]
    urls = [
        QUEUE,
        thumbnail_url(photo),
        reverse("admin:carbon_claimphoto_image", args=[photo.pk]),
        reverse("admin:carbon_claimphoto_change", args=[photo.pk]),
    ]
    anonymous = Client()
    resident = Client()
    resident.force_login(photo.claim.user)
    for client in (anonymous, resident):
        for url in urls:
            response = client.get(url)
            assert response.status_code == 302, url
            assert "/admin/login/" in response["Location"]
    # Staff without the photo permissions are refused.
    staff = Client()
    staff.force_login(UserFactory(is_staff=True))
    for url in urls:
        assert staff.get(url).status_code == 403, url


def _act(client, action: str, photos: list[ClaimPhoto], **extra):
    return client.post(
        QUEUE, {"action": action, ACTION_CHECKBOX_NAME: [p.pk for p in photos], **extra}
    )


def test_approval_needs_a_reason_and_credits_through_the_ledger(
    admin_client, queue, ledger_is_consistent
):
    photo = queue["waiting"]

    form = _act(admin_client, "approve", [photo])
    assert form.status_code == 200 and b"reason" in form.content
    missing = _act(admin_client, "approve", [photo], apply="1", note="")
    assert missing.status_code == 200
    assert Claim.objects.get(pk=photo.claim_id).status == ClaimStatus.NEEDS_REVIEW

    done = _act(admin_client, "approve", [photo], apply="1", note="Own bag clearly visible.")

    assert done.status_code == 302
    claim = Claim.objects.get(pk=photo.claim_id)
    assert claim.status == ClaimStatus.CREDITED
    # 2 uses x 5 g at the photo weight (80%).
    assert claim.credited_g == 8
    assert claim.award.amount_g == 8
    assert claim.review_note == "Own bag clearly visible."
    assert claim.receipt["history"][-1]["decision"] == "approved"
    ledger_is_consistent()


def test_rejection_records_the_reason_and_credits_nothing(
    admin_client, queue, ledger_is_consistent
):
    photo = queue["waiting"]
    awards = Transfer.objects.count()

    done = _act(admin_client, "reject", [photo], apply="1", note="No bag in the picture.")

    assert done.status_code == 302
    claim = Claim.objects.get(pk=photo.claim_id)
    assert claim.status == ClaimStatus.REJECTED
    assert claim.receipt["reason"] == "No bag in the picture."
    assert Transfer.objects.count() == awards
    # Deciding again is refused by claim_review, not done twice.
    again = _act(admin_client, "approve", [photo], apply="1", note="Changed my mind.")
    assert again.status_code == 302
    assert Claim.objects.get(pk=photo.claim_id).status == ClaimStatus.REJECTED
    assert Transfer.objects.count() == awards
    ledger_is_consistent()


def test_a_moderator_with_the_photo_permissions_can_decide(queue):
    # Viewing the photos and reviewing claims: deciding needs carbon.review_claim.
    moderator = UserFactory(is_staff=True)
    moderator.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="carbon", codename__in=["view_claimphoto", "review_claim"]
        )
    )
    client = Client()
    client.force_login(moderator)
    photo = queue["waiting"]

    assert client.get(QUEUE).status_code == 200
    assert client.get(thumbnail_url(photo)).status_code == 200
    assert _act(client, "approve", [photo], apply="1", note="ok").status_code == 302
    assert Claim.objects.get(pk=photo.claim_id).status == ClaimStatus.CREDITED


def test_the_queue_can_be_searched_by_email_or_claim_id(admin_client, queue):
    photo = queue["waiting"]

    by_email = admin_client.get(QUEUE, {"q": photo.claim.user.email, "queue": "all"})
    by_claim = admin_client.get(QUEUE, {"q": str(photo.claim_id)})

    assert by_email.status_code == 200 and thumbnail_url(photo) in by_email.content.decode()
    assert by_claim.status_code == 200 and thumbnail_url(photo) in by_claim.content.decode()
