"""The map API (filters, clusters, bbox refusals), the Darwin Core export and project
statistics."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from biodiversity.maps.grid import map_grid_rebuild
from biodiversity.projects.stats import project_observer_counts, project_statistics
from tests.biodiversity.conftest import post_sighting
from tests.carbon.api_helpers import assert_error, client_for
from tests.carbon.factories import UserFactory

pytestmark = pytest.mark.django_db
BBOX = "114.0,30.3,114.7,30.8"


def map_get(query: str):
    return APIClient().get(f"/api/v1/biodiversity/map?{query}")


@pytest.fixture
def world(observer, observer_api, taxa, survey, expert):
    """Three common sightings around Wuhan and one outside it; two are research grade."""
    made = {}
    for name, lat, lon, days in [
        ("Ardea cinerea", 30.55, 114.37, 1),
        ("Egretta garzetta", 30.60, 114.25, 3),
        ("Osmanthus fragrans", 30.50, 114.40, 10),
        ("Ardea alba", 40.0, 116.3, 2),
    ]:
        body = post_sighting(
            observer_api,
            taxa[name],
            latitude=lat,
            longitude=lon,
            observed_at=(timezone.now() - timedelta(days=days)).isoformat(),
            seed=len(made) + 20,
        ).json()
        made[name] = body["id"]
    for name in ("Ardea cinerea", "Osmanthus fragrans"):
        client_for(expert).post(
            f"/api/v1/biodiversity/sightings/{made[name]}/identifications",
            {"taxon": taxa[name].pk},
            format="json",
        )
    return made


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "FeatureCollection" and body["clustered"] is False
    return {f["properties"]["id"] for f in body["features"]}


def test_points_in_the_box_with_filters(world, taxa):
    assert ids(map_get(f"bbox={BBOX}&zoom=14")) == {
        world["Ardea cinerea"],
        world["Egretta garzetta"],
        world["Osmanthus fragrans"],
    }
    birds = ids(map_get(f"bbox={BBOX}&zoom=14&taxon={taxa['Aves'].pk}"))
    assert birds == {world["Ardea cinerea"], world["Egretta garzetta"]}
    herons = ids(map_get(f"bbox={BBOX}&zoom=14&taxon={taxa['Ardeidae'].pk}&grade=research"))
    assert herons == {world["Ardea cinerea"]}
    recent = (timezone.localdate() - timedelta(days=5)).isoformat()
    assert world["Osmanthus fragrans"] not in ids(
        map_get(f"bbox={BBOX}&zoom=14&observed_from={recent}")
    )
    assert ids(map_get(f"bbox={BBOX}&zoom=14&project=east-lake")) == ids(
        map_get(f"bbox={BBOX}&zoom=14")
    )


def test_low_zoom_answers_clusters_with_counts_live_when_filtered_from_the_grid_otherwise(
    world, taxa, observer_api
):
    def counts(query):
        body = map_get(query).json()
        assert body["clustered"] is True
        return sorted(f["properties"]["count"] for f in body["features"])

    # Filtered: counted live. Wuhan's three in one cell, Beijing's apart.
    assert counts(f"bbox=100,20,130,45&zoom=5&taxon={taxa['Animalia'].pk}") == [1, 2]
    assert counts(f"bbox=100,20,130,45&zoom=5&taxon={taxa['Plantae'].pk}") == [1]
    # Unfiltered: from the grid, as of its last rebuild (empty until the first).
    assert counts("bbox=100,20,130,45&zoom=5") == []
    assert map_grid_rebuild() >= 4
    assert counts("bbox=100,20,130,45&zoom=5") == [1, 3]
    post_sighting(observer_api, taxa["Ardea alba"], latitude=30.56, longitude=114.36, seed=77)
    assert counts("bbox=100,20,130,45&zoom=5") == [1, 3]  # until the next rebuild
    map_grid_rebuild()
    assert counts("bbox=100,20,130,45&zoom=5") == [1, 4]
    # Same clusters from the grid and live, at every low zoom.
    for zoom in range(3, 14):
        grid = map_get(f"bbox={BBOX}&zoom={zoom}").json()["features"]
        live = map_get(f"bbox={BBOX}&zoom={zoom}&grade=needs_id").json()["features"]
        live_all = map_get(f"bbox={BBOX}&zoom={zoom}&taxon={taxa['Animalia'].pk}").json()
        assert sum(f["properties"]["count"] for f in grid) == 4, zoom
        assert len(grid) >= len(live) and live_all["as_of"] is None


@pytest.mark.parametrize(
    "query",
    ["bbox=1,2,3", "bbox=10,10,5,20", "bbox=a,b,c,d", "bbox=0,0,200,10", "bbox=nan,0,1,1"],
)
def test_a_bad_box_is_refused(query):
    assert_error(map_get(query + "&zoom=10"), 400, "invalid_bbox")


def test_unknown_filters_are_refused(db):
    assert_error(map_get(f"bbox={BBOX}&taxon=99999"), 400, "unknown_taxon")
    assert_error(map_get(f"bbox={BBOX}&project=nowhere"), 400, "invalid")
    assert_error(map_get(f"bbox={BBOX}&zoom=40"), 400, "invalid")


def test_darwin_core_csv_and_archive_hold_research_grade_sightings(world):
    response = APIClient().get("/api/v1/biodiversity/export/dwc.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["scientificName"] for r in rows} == {"Ardea cinerea", "Osmanthus fragrans"}
    row = next(r for r in rows if r["scientificName"] == "Ardea cinerea")
    assert row["basisOfRecord"] == "HumanObservation"
    assert row["occurrenceID"].endswith(world["Ardea cinerea"])
    assert row["decimalLatitude"] == "30.550000" and row["geodeticDatum"] == "WGS84"
    assert row["kingdom"] == "Animalia" and row["informationWithheld"] == ""
    assert row["eventDate"].endswith("Z")
    archive = APIClient().get("/api/v1/biodiversity/export/dwc-a.zip")
    assert archive["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
        assert set(z.namelist()) == {"occurrence.txt", "meta.xml", "eml.xml"}
        meta = z.read("meta.xml").decode()
        assert 'term="http://rs.tdwg.org/dwc/terms/informationWithheld"' in meta
        assert "Ardea cinerea" in z.read("occurrence.txt").decode()
        assert "<title>" in z.read("eml.xml").decode()


def test_project_statistics_reconcile_with_the_per_observer_counts(world, survey, observer, expert):
    stats = project_statistics(project=survey)
    # The three Wuhan sightings are the observer's (a volunteer): Beijing is outside.
    assert stats == {"sightings": 3, "species": 2, "observers": 1}
    rows = list(project_observer_counts(project=survey))
    assert rows == [{"observer": observer.pk, "species": 2, "sightings": 3}]
    # An outsider's sighting in the area does not count for a closed survey.
    post_sighting(client_for(UserFactory()), latitude=30.55, longitude=114.37, seed=99)
    assert project_statistics(project=survey)["sightings"] == 3
    body = APIClient().get("/api/v1/biodiversity/projects/east-lake").json()
    assert body["statistics"] == {"sightings": 3, "species": 2, "observers": 1}
    assert_error(APIClient().get("/api/v1/biodiversity/projects/nope"), 404, "not_found")


def test_taxa_search_and_threatened_list(taxa):
    api = APIClient()
    found = api.get("/api/v1/biodiversity/taxa?q=白鹭").json()["results"]
    assert {t["scientific_name"] for t in found} == {"Egretta garzetta", "Ardea alba"}
    threatened = api.get("/api/v1/biodiversity/taxa?threatened=true&limit=200").json()["results"]
    names = {t["scientific_name"] for t in threatened}
    assert names == {"Ciconia boyciana", "Strigiformes"}
    stork = next(t for t in threatened if t["scientific_name"] == "Ciconia boyciana")
    assert stork["protection_level"] == "I" and stork["iucn"] == "EN" and stork["rank"] == "species"
