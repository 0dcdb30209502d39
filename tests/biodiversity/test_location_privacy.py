"""Location privacy, tested from the outside: an obscured sighting's true coordinates never
appear in any public answer (the sighting, the map at every zoom and filter, the export,
the public page, error messages), while the observer and an institution member of a survey
that grants it see them, and each such look is logged."""

from __future__ import annotations

import io
import random
import re
import zipfile

import pytest
from django.contrib.gis.geos import Point
from django.test import Client
from rest_framework.test import APIClient

from biodiversity.institutions.services import project_member_add
from biodiversity.maps.grid import map_grid_rebuild
from biodiversity.sightings.models import Sighting, TrueLocationAccess
from biodiversity.sightings.privacy import (
    CELL_DEGREES,
    cell_accuracy_m,
    cell_of,
    gcj02_to_wgs84,
    obscured_point,
    wgs84_to_gcj02,
)
from tests.biodiversity.conftest import TRUE_LAT, TRUE_LON, post_sighting
from tests.biodiversity.factories import SurveyProjectFactory
from tests.carbon.api_helpers import client_for
from tests.carbon.factories import UserFactory

pytestmark = pytest.mark.django_db

# eviltransform's published test points (wgsLat, wgsLng, gcjLat, gcjLng).
KNOWN = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), KNOWN)
def test_gcj02_conversion_matches_known_points(wlat, wlon, glat, glon):
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert (lat, lon) == (pytest.approx(glat, abs=1e-7), pytest.approx(glon, abs=1e-7))
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    # Within a few millimetres of the true WGS-84 point.
    assert (back_lat, back_lon) == (pytest.approx(wlat, abs=1e-7), pytest.approx(wlon, abs=1e-7))


def test_outside_china_gcj02_is_wgs84():
    assert gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)


def test_the_obscured_point_is_anywhere_in_the_true_cell_and_the_accuracy_covers_it():
    true = Point(TRUE_LON, TRUE_LAT, srid=4326)
    draws = [obscured_point(true, rng=random.Random(i)) for i in range(200)]
    west, south = cell_of(true)
    assert all(
        west <= p.x <= west + CELL_DEGREES and south <= p.y <= south + CELL_DEGREES for p in draws
    )
    # Spread over the cell, not clustered round the true point.
    assert max(p.x for p in draws) - min(p.x for p in draws) > 0.15
    assert cell_accuracy_m(true) > 25_000  # a 0.2-degree cell's diagonal at Wuhan's latitude


def true_digits() -> list[str]:
    """How the true coordinates could appear in a text: at 4 to 6 decimals (about 10 m down
    to 10 cm), rounded or cut. Three decimals (100 m) would match unrelated points in the
    same city by chance, as a cluster's mean did."""
    out = set()
    for value in (TRUE_LAT, TRUE_LON):
        for places in (4, 5, 6):
            out.add(f"{value:.{places}f}")
            out.add(str(value)[: str(value).index(".") + 1 + places])
    return sorted(out)


def assert_no_true_point(text: str, where: str):
    for digits in true_digits():
        assert digits not in text, f"{digits} (the true point) appears in {where}"


@pytest.fixture
def obscured(observer_api, taxa, districts):
    """A research-grade sighting of the threatened Oriental stork: obscured."""
    response = post_sighting(observer_api, taxa["Ciconia boyciana"])
    assert response.status_code == 201, response.content
    sighting_id = response.json()["id"]
    confirm = client_for(UserFactory()).post(
        f"/api/v1/biodiversity/sightings/{sighting_id}/identifications",
        {"taxon": taxa["Ciconia boyciana"].pk},
        format="json",
    )
    assert confirm.status_code == 201, confirm.content
    sighting = Sighting.objects.get(pk=sighting_id)
    assert sighting.obscured and sighting.quality_grade == "research"
    # The drawn point must not itself happen to share the true digits (1 in ~10^3).
    while any(
        d in f"{sighting.public_location.x} {sighting.public_location.y}" for d in true_digits()
    ):
        sighting.public_location = obscured_point(sighting.location)
        sighting.save()
    map_grid_rebuild()  # the unfiltered low-zoom map reads the cluster grid
    return sighting


def public_answers(sighting) -> dict[str, str]:
    anonymous, stranger = APIClient(), client_for(UserFactory())
    pk = sighting.pk
    answers = {
        "detail (anonymous)": anonymous.get(f"/api/v1/biodiversity/sightings/{pk}"),
        "detail (another resident)": stranger.get(f"/api/v1/biodiversity/sightings/{pk}"),
        "export csv": anonymous.get("/api/v1/biodiversity/export/dwc.csv"),
        "page": Client().get("/biodiversity/map/"),
        "identification refused": stranger.post(
            f"/api/v1/biodiversity/sightings/{pk}/identifications", {"taxon": 999999}, format="json"
        ),
        "verdict refused": stranger.post(
            f"/api/v1/biodiversity/sightings/{pk}/verdicts", {"outcome": "accepted"}, format="json"
        ),
        "flag refused": stranger.post(
            f"/api/v1/biodiversity/sightings/{pk}/flags", {"reason": "nope"}, format="json"
        ),
        "project statistics": anonymous.get("/api/v1/biodiversity/projects/east-lake"),
    }
    for zoom in (3, 8, 11, 12, 13, 15, 18):
        for extra in (
            "",
            "&grade=research",
            f"&taxon={sighting.community_taxon_id}",
            "&project=east-lake",
        ):
            bbox = "114.0,30.3,114.7,30.8"
            answers[f"map z{zoom}{extra}"] = anonymous.get(
                f"/api/v1/biodiversity/map?bbox={bbox}&zoom={zoom}{extra}"
            )
    # A box around the true point only, tight: the sighting must not be found by it unless
    # its public point happens to lie there too.
    answers["map tight box"] = anonymous.get(
        f"/api/v1/biodiversity/map?bbox={TRUE_LON - 0.001},{TRUE_LAT - 0.001},"
        f"{TRUE_LON + 0.001},{TRUE_LAT + 0.001}&zoom=18"
    )
    bodies = {}
    for where, response in answers.items():
        assert response.status_code < 500, where
        content = b"".join(response.streaming_content) if response.streaming else response.content
        bodies[where] = content.decode()
    archive = anonymous.get("/api/v1/biodiversity/export/dwc-a.zip")
    with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
        for name in z.namelist():
            bodies[f"archive {name}"] = z.read(name).decode()
    return bodies


def test_no_public_answer_reveals_an_obscured_true_point(obscured, survey):
    bodies = public_answers(obscured)
    for where, text in bodies.items():
        assert_no_true_point(text, where)
        assert "Moshan south shore pavilion" not in text, where
        assert "pavilion" not in text, where  # the notes go with the place name
    # It is there, at its public point, and says it is obscured.
    detail = bodies["detail (anonymous)"]
    assert f"{obscured.public_location.y}" in detail and '"obscured":true' in detail
    assert '"true_location":null' in detail and '"district":null' in detail
    assert "informationWithheld" in bodies["export csv"]
    assert str(obscured.pk) in bodies["export csv"]
    assert "Generalised" in bodies["export csv"] or "generalised" in bodies["export csv"]
    # No public answer knows the true point's district either.
    assert "wuchang" not in detail


def test_the_observer_and_a_granted_institution_member_see_the_true_point_and_access_is_logged(
    obscured, observer_api, expert, survey
):
    mine = observer_api.get(f"/api/v1/biodiversity/sightings/{obscured.pk}").json()
    assert mine["true_location"]["latitude"] == pytest.approx(TRUE_LAT)
    assert mine["place_name"] == "Moshan south shore pavilion"
    assert TrueLocationAccess.objects.count() == 0  # the observer's own look is not logged

    seen = client_for(expert).get(f"/api/v1/biodiversity/sightings/{obscured.pk}").json()
    assert seen["true_location"]["longitude"] == pytest.approx(TRUE_LON)
    access = TrueLocationAccess.objects.get()
    assert (access.user, access.project, access.sighting_id) == (expert, survey, obscured.pk)


def test_no_grant_means_no_true_point(obscured, expert, survey, institution):
    # The survey stops granting: the same member sees the public point only.
    survey.grants_true_coordinates = False
    survey.save()
    assert (
        client_for(expert)
        .get(f"/api/v1/biodiversity/sightings/{obscured.pk}")
        .json()["true_location"]
        is None
    )
    # A member of another survey that grants it, elsewhere, sees nothing either.
    elsewhere = SurveyProjectFactory(institution=institution, slug="far-away")
    elsewhere.area = elsewhere.area.__class__(Point(0, 0).buffer(1).envelope, srid=4326)
    elsewhere.save()
    project_member_add(project=elsewhere, user=expert, role="member")
    body = client_for(expert).get(f"/api/v1/biodiversity/sightings/{obscured.pk}").json()
    assert body["true_location"] is None
    assert TrueLocationAccess.objects.count() == 0
    assert_no_true_point(str(body), "the detail for a member without a grant")


def test_the_observer_can_choose_to_obscure_a_common_species(observer_api, taxa):
    body = post_sighting(observer_api, taxa["Ardea alba"], obscure="true").json()
    assert body["obscured"] is True
    public = APIClient().get(f"/api/v1/biodiversity/sightings/{body['id']}").content.decode()
    assert_no_true_point(public, "an observer-obscured sighting")


def test_an_identification_of_a_threatened_taxon_obscures_and_the_order_listing_counts(
    observer_api, taxa
):
    body = post_sighting(observer_api, taxa["Ardea alba"]).json()
    assert body["obscured"] is False
    # Someone suggests an owl: owls are listed as a whole order in the mini checklist.
    client_for(UserFactory()).post(
        f"/api/v1/biodiversity/sightings/{body['id']}/identifications",
        {"taxon": taxa["Otus lettia"].pk},
        format="json",
    )
    sighting = Sighting.objects.get(pk=body["id"])
    assert sighting.obscured is True
    assert not re.search(
        str(TRUE_LAT)[:7],
        APIClient().get(f"/api/v1/biodiversity/sightings/{sighting.pk}").content.decode(),
    )
