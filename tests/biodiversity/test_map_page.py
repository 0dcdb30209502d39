"""The public map page in a real headless Chromium: it draws clusters and points from the
map API with our own Leaflet (no CDN, district outlines as the base layer), pans and
filters, and neither the page nor any request it makes carries an obscured true point."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from biodiversity.maps.grid import map_grid_rebuild
from biodiversity.sightings.identify import identification_add
from biodiversity.sightings.models import Sighting
from biodiversity.sightings.submit import SightingDraft, sighting_submit
from tests.biodiversity.conftest import TRUE_LAT, TRUE_LON
from tests.biodiversity.test_location_privacy import true_digits
from tests.browser import screenshot
from tests.carbon.factories import UserFactory
from tests.carbon.photo_samples import photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _record(observer, taxon, lat, lon, seed, **kw) -> Sighting:
    photo = SimpleUploadedFile("p.jpg", photo_bytes(seed, gps=None), content_type="image/jpeg")
    sighting, _ = sighting_submit(
        observer=observer,
        draft=SightingDraft(
            taxon=taxon.pk,
            latitude=lat,
            longitude=lon,
            accuracy_m=10,
            observed_at=timezone.now() - timedelta(days=1),
            place_name="Secret pond",
            **kw,
        ),
        files=[photo],
    )
    return sighting


@pytest.fixture
def mapped(taxa, districts):
    observer, helper = UserFactory(), UserFactory()
    common = []
    for i, (lat, lon) in enumerate(
        [(30.58, 114.30), (30.59, 114.31), (30.60, 114.27), (30.52, 114.33), (30.47, 114.40)]
    ):
        s = _record(observer, taxa["Ardea cinerea"], lat, lon, 40 + i)
        identification_add(user=helper, sighting_id=s.pk, taxon_id=taxa["Ardea cinerea"].pk)
        common.append(s)
    stork = _record(observer, taxa["Ciconia boyciana"], TRUE_LAT, TRUE_LON, 60)
    stork.refresh_from_db()
    assert stork.obscured
    map_grid_rebuild()
    return {"common": common, "stork": stork}


def test_the_public_map_draws_pans_filters_and_never_carries_a_true_point(page, mapped):
    responses = []
    page.on("response", lambda r: responses.append(r))
    page.goto("/biodiversity/map/")
    page.wait_for_selector("#map[data-loaded]")
    # Served from our own static files: no request leaves the live server.
    origins = {r.url.split("/")[2] for r in responses}
    assert len(origins) == 1, origins
    assert page.locator(".leaflet-container").count() == 1
    assert page.locator("path.leaflet-interactive").count() >= 4  # the district outlines
    # City zoom: clusters with counts.
    page.wait_for_selector(".cluster-icon")
    counts = [int(t) for t in page.locator(".cluster-icon").all_inner_texts()]
    assert sum(counts) == 6
    screenshot(page, "biodiversity-map-city")

    # Zoom in to street level on Jianghan and pan: points, not clusters.
    for _ in range(3):
        loaded = page.locator("#map").get_attribute("data-loaded")
        page.click(".leaflet-control-zoom-in")
        page.wait_for_selector(f'#map:not([data-loaded="{loaded}"])')
    page.wait_for_timeout(300)
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    loaded = page.locator("#map").get_attribute("data-loaded")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 150, cy + 40, steps=8)
    page.mouse.up()
    page.wait_for_selector(f'#map:not([data-loaded="{loaded}"])')
    assert page.locator("#map").get_attribute("data-clustered") == "false"
    points = page.locator("path.sighting-point").count()
    assert points >= 1
    screenshot(page, "biodiversity-map-street")

    # Back to the city, then filter: research grade only (the stork is not).
    loaded = page.locator("#map").get_attribute("data-loaded")
    for _ in range(3):
        loaded = page.locator("#map").get_attribute("data-loaded")
        page.click(".leaflet-control-zoom-out")
        page.wait_for_selector(f'#map:not([data-loaded="{loaded}"])')
    loaded = page.locator("#map").get_attribute("data-loaded")
    page.select_option("#f-grade", "research")
    page.wait_for_selector(f'#map:not([data-loaded="{loaded}"])')
    page.wait_for_timeout(300)
    filtered = [int(t) for t in page.locator(".cluster-icon").all_inner_texts()]
    assert sum(filtered) == 5
    assert any("grade=research" in r.url for r in responses)
    screenshot(page, "biodiversity-map-filtered")

    # Nothing the page received carries the stork's true point or its place name.
    texts = [page.content()]
    for r in responses:
        try:
            texts.append(r.url + r.text())
        except Exception:  # images and aborted requests have no text
            texts.append(r.url)
    for text in texts:
        for digits in true_digits():
            assert digits not in text, (digits, text[:200])
        assert "Secret pond" not in text
