"""Sightings under real concurrency (PostgreSQL, threads with their own connections): a
phone retrying the same upload at once creates one sighting, and identifications that
arrive together all count."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from biodiversity.sightings.identify import identification_add
from biodiversity.sightings.models import Sighting, SightingPhoto
from biodiversity.sightings.submit import SightingDraft, sighting_submit
from tests.biodiversity.conftest import TRUE_LAT, TRUE_LON
from tests.carbon.factories import UserFactory
from tests.carbon.photo_samples import photo_bytes
from tests.carbon.test_ledger_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_same_upload_sent_four_times_at_once_makes_one_sighting(taxa):
    observer = UserFactory()
    data = photo_bytes(3, gps=None)
    draft = SightingDraft(
        taxon=taxa["Ardea alba"].pk, latitude=TRUE_LAT, longitude=TRUE_LON, client_uuid=uuid.uuid4()
    )

    def upload(_i):
        photo = SimpleUploadedFile("p.jpg", data, content_type="image/jpeg")
        return sighting_submit(observer=observer, draft=draft, files=[photo])

    results = run_together(4, upload)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len({s.pk for s, _created in results}) == 1
    assert sum(created for _s, created in results) == 1
    assert Sighting.objects.count() == 1 and SightingPhoto.objects.count() == 1


def test_identifications_arriving_together_all_count(taxa):
    observer = UserFactory()
    photo = SimpleUploadedFile("p.jpg", photo_bytes(4, gps=None), content_type="image/jpeg")
    sighting, _ = sighting_submit(
        observer=observer,
        draft=SightingDraft(taxon=taxa["Ardea alba"].pk, latitude=TRUE_LAT, longitude=TRUE_LON),
        files=[photo],
    )
    helpers = [UserFactory() for _ in range(4)]

    def identify(i):
        return identification_add(
            user=helpers[i], sighting_id=sighting.pk, taxon_id=taxa["Ardea alba"].pk
        )

    results = run_together(4, identify)
    assert not [r for r in results if isinstance(r, BaseException)], results
    sighting.refresh_from_db()
    assert sighting.identifications.filter(current=True).count() == 5
    assert sighting.community_taxon == taxa["Ardea alba"]
    assert sighting.quality_grade == "research"
