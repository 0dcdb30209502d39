"""The biodiversity admin through its own URLs: a verdict needs the named permission
`biodiversity.record_verdict` (and an institution), the flag queue needs
`biodiversity.moderate_flag`; staff without them are refused and nothing changes."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.test import Client

from biodiversity.sightings.models import Flag, Sighting, Verdict
from tests.biodiversity.conftest import post_sighting
from tests.carbon.factories import UserFactory

pytestmark = pytest.mark.django_db
SIGHTINGS = "/admin/biodiversity/sighting/"


def staff(*codenames, user=None):
    user = user or UserFactory()
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="biodiversity", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


def verdict_post(client, sighting_id, *, apply=True):
    data = {"action": "verdict_accepted", ACTION_CHECKBOX_NAME: [str(sighting_id)]}
    if apply:
        data.update(apply="1", note="Checked the photos.")
    return client.post(SIGHTINGS, data)


@pytest.fixture
def sighting(observer_api, taxa):
    return Sighting.objects.get(pk=post_sighting(observer_api, taxa["Ardea cinerea"]).json()["id"])


def test_a_staff_member_without_the_verdict_permission_is_refused(sighting, expert):
    viewer = staff("view_sighting", user=expert)  # an institution member, but no permission
    page = viewer.get(SIGHTINGS)
    assert page.status_code == 200
    assert b"verdict_accepted" not in page.content  # the action is not offered
    response = verdict_post(viewer, sighting.pk)
    assert response.status_code in (200, 302, 403)
    assert Verdict.objects.count() == 0


def test_with_the_permission_an_institution_member_records_a_verdict(sighting, expert):
    decider = staff("view_sighting", "record_verdict", user=expert)
    assert b"verdict_accepted" in decider.get(SIGHTINGS).content
    asked = verdict_post(decider, sighting.pk, apply=False)
    assert asked.status_code == 200 and b"note" in asked.content  # the reason page
    done = verdict_post(decider, sighting.pk)
    assert done.status_code == 302
    verdict = Verdict.objects.get()
    assert (verdict.outcome, verdict.user, verdict.note) == (
        "accepted",
        expert,
        "Checked the photos.",
    )


def test_the_permission_without_an_institution_records_nothing(sighting):
    decider = staff("view_sighting", "record_verdict")
    response = verdict_post(decider, sighting.pk)
    assert response.status_code == 302
    assert Verdict.objects.count() == 0


def test_the_flag_queue_needs_the_moderation_permission(sighting):
    flag = Flag.objects.create(sighting=sighting, user=UserFactory(), reason="spam")
    data = {"action": "uphold", ACTION_CHECKBOX_NAME: [str(flag.pk)]}
    viewer = staff("view_flag")
    assert viewer.get("/admin/biodiversity/flag/").status_code == 200
    viewer.post("/admin/biodiversity/flag/", data)
    flag.refresh_from_db()
    assert flag.status == "open"
    moderator = staff("view_flag", "moderate_flag")
    moderator.post("/admin/biodiversity/flag/", data)
    flag.refresh_from_db()
    sighting.refresh_from_db()
    assert flag.status == "upheld" and sighting.hidden


def test_admin_pages_open_and_show_the_photos(sighting, admin_client):
    for url in [
        SIGHTINGS,
        f"{SIGHTINGS}{sighting.pk}/change/",
        "/admin/biodiversity/flag/",
        "/admin/biodiversity/taxon/",
        "/admin/biodiversity/surveyproject/",
        "/admin/biodiversity/institution/",
    ]:
        assert admin_client.get(url).status_code == 200, url
    photo = admin_client.get(f"{SIGHTINGS}{sighting.pk}/photo/?position=1&variant=thumbnail")
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
    assert staff().get(f"{SIGHTINGS}{sighting.pk}/photo/").status_code == 403
