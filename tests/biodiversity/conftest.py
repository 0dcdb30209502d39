"""Fixtures for the biodiversity tests: the mini checklist, residents who post sightings
with real photos (Pillow, tests/carbon/photo_samples.py), an institution member in a survey
that grants true coordinates."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from biodiversity.institutions.models import ProjectMember
from biodiversity.institutions.services import institution_member_add, project_member_add
from tests.biodiversity.factories import (
    InstitutionFactory,
    SurveyProjectFactory,
    load_mini_checklist,
)
from tests.carbon.api_helpers import client_for, new_key
from tests.carbon.factories import UserFactory
from tests.carbon.photo_samples import photo_bytes

DISTRICTS = Path(__file__).resolve().parents[2] / "carbon" / "demo" / "districts.geojson"
# A true point by East Lake, in Wuchang (its digits are what the leak tests search for).
TRUE_LAT, TRUE_LON = 30.553217, 114.371846


@pytest.fixture
def taxa(db):
    return load_mini_checklist()


@pytest.fixture
def districts(db):
    call_command("load_areas", str(DISTRICTS), kind="district", verbosity=0)


@pytest.fixture
def observer(db):
    return UserFactory(display_name="Observer")


@pytest.fixture
def observer_api(observer):
    return client_for(observer)


@pytest.fixture
def institution(db):
    return InstitutionFactory(name="Jianghan Biodiversity Institute")


@pytest.fixture
def expert(institution):
    user = UserFactory(display_name="Expert")
    institution_member_add(institution=institution, user=user)
    return user


@pytest.fixture
def survey(institution, expert, observer):
    project = SurveyProjectFactory(institution=institution, slug="east-lake")
    project_member_add(project=project, user=expert, role=ProjectMember.Role.MEMBER)
    project_member_add(project=project, user=observer)
    return project


def photo_file(seed: int = 1, name: str = "p.jpg", **kw) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, photo_bytes(seed, **kw), content_type="image/jpeg")


def sighting_form(guess=None, *, photos=None, seed: int = 1, **fields) -> dict:
    form = {
        "latitude": TRUE_LAT,
        "longitude": TRUE_LON,
        "accuracy_m": 12,
        "observed_at": (timezone.now() - timedelta(hours=2)).isoformat(),
        "client_uuid": new_key(),
        "place_name": "Moshan south shore pavilion",
        "notes": "Feeding in the reeds by the pavilion",
        **fields,
    }
    if guess is not None:
        form["taxon"] = guess.pk
    form["photos"] = photos if photos is not None else [photo_file(seed, gps=None)]
    return {k: v for k, v in form.items() if v is not None}


def post_sighting(client, guess=None, **kw):
    return client.post(
        "/api/v1/biodiversity/sightings", sighting_form(guess, **kw), format="multipart"
    )
