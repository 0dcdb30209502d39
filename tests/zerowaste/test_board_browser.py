"""The public notice board as a person sees it, in headless Chromium: no login, Chinese by
default and English on asking; the map (Leaflet from our static files, no tile server) draws
every listed cell; a cell's page charts its achievements; a campaign shows its rules,
candidates, live tally and removed votes. Screenshots go to var/screenshots/."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from tests.browser import screenshot
from zerowaste.campaigns.models import Campaign
from zerowaste.cells.models import Cell, CellStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=io.StringIO())


def test_the_board_lists_and_maps_public_cells_in_chinese_and_english(page, demo):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    public = Cell.objects.public().count()

    page.goto("/zerowaste/")
    page.wait_for_selector("#zw-map[data-ready]")

    assert page.get_attribute("#zw-map", "data-ready") == str(public)
    assert page.locator(".leaflet-interactive").count() >= public  # dots and outlines
    assert page.locator("tr.zw-cell-row").count() == public
    assert page.locator("h1").inner_text() == "无废细胞公示栏"
    in_notice = Cell.objects.filter(status=CellStatus.IN_NOTICE).count()
    assert page.locator('tr[data-status="in_notice"]').count() == in_notice
    screenshot(page, "zerowaste-board-zh")
    assert errors == []

    page.goto("/zerowaste/?lang=en&kind=family")
    page.wait_for_selector("#zw-map[data-ready]")
    assert page.locator("h1").inner_text() == "Zero-waste notice board"
    families = Cell.objects.public().filter(kind="family").count()
    assert page.locator("tr.zw-cell-row").count() == families
    screenshot(page, "zerowaste-board-en-families")


def test_a_cells_page_charts_its_achievements(page, demo):
    cell = Cell.objects.public().filter(kind="school").first()
    page.goto(f"/zerowaste/cells/{cell.pk}/")
    assert page.locator("h1").inner_text() == cell.name
    charts = page.locator("svg.zw-chart")
    assert charts.count() == 5
    assert charts.first.locator("circle").count() == 12  # a year, month by month
    assert page.locator(".zw-objections").inner_text() == "0"
    screenshot(page, "zerowaste-cell-zh")


def test_a_campaign_shows_rules_candidates_and_live_tally(page, demo):
    campaign = Campaign.objects.get()
    page.goto(f"/zerowaste/campaigns/{campaign.pk}/?lang=en")
    assert page.locator("h1").inner_text() == campaign.title_en
    assert "3 votes a day" in page.locator(".zw-rules").inner_text()
    assert page.locator("tr.zw-candidate").count() == campaign.candidates.count()
    assert re.search(r"\b0 votes were removed", page.locator(".zw-removed").inner_text())
    screenshot(page, "zerowaste-campaign-en")
    page.goto(f"/zerowaste/campaigns/{campaign.pk}/")
    assert "公众投票" in page.content()
    screenshot(page, "zerowaste-campaign-zh")


def test_the_admin_charts_a_cells_achievements(page, demo):
    from carbon.models import User
    from tests.browser import admin_login

    User.objects.create_superuser(email="assessor@example.org", password="assessor-pass-123")
    cell = Cell.objects.public().filter(kind="community").first()
    admin_login(page, email="assessor@example.org", password="assessor-pass-123")
    page.goto(f"/admin/zerowaste/cell/{cell.pk}/change/")

    charts = page.locator(".zw-chart-box svg")
    assert charts.count() == 5
    assert charts.first.bounding_box()["width"] > 300  # drawn, not just present
    screenshot(page, "zerowaste-admin-cell-zh")
    page.goto("/admin/zerowaste/cell/?status__exact=in_notice")
    assert page.locator("select[name=action] option[value=certify]").count() == 1
    screenshot(page, "zerowaste-admin-cells-in-notice-zh")
