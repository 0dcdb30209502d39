"""The public notice board (/zerowaste/): no login, drawn on the server, in Simplified
Chinese unless the browser asks for English (Accept-Language) or the link says `?lang=en`.
Certified cells and cells in their notice period on a list and a map (Leaflet from our own
static files, district outlines instead of a tile server: it works offline), a cell's page
with its achievements charted, and each campaign with its rules, candidates and live tally."""

from __future__ import annotations

import json
from collections import defaultdict

from django.db.models import Count
from django.http import Http404
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_GET

from carbon.models import District
from zerowaste.campaigns.models import Campaign
from zerowaste.campaigns.serializers import campaign_phase
from zerowaste.campaigns.tally import campaign_removed_votes, campaign_tally
from zerowaste.cells.charts import achievement_chart_svg
from zerowaste.cells.models import Cell, CellKind, CellStatus, Indicator
from zerowaste.cells.serializers import point_geometry

LANGS = {"en": "en", "zh": "zh-hans", "zh-hans": "zh-hans"}


def _language(request) -> str:
    chosen = LANGS.get(request.GET.get("lang", ""))
    if chosen:
        translation.activate(chosen)
        request.LANGUAGE_CODE = chosen
    return translation.get_language()


def _page(request, template: str, context: dict):
    lang = _language(request)
    zh = lang.startswith("zh")
    response = render(
        request,
        template,
        {**context, "zh": zh, "lang_param": "" if zh else "?lang=en", "lang": lang},
    )
    response["Content-Language"] = lang
    return response


def _name(cell: Cell, zh: bool) -> str:
    return cell.name if zh or not cell.name_en else cell.name_en


@require_GET
def board_index(request):
    cells = (
        Cell.objects.public()
        .select_related("district")
        .annotate(objection_count=Count("objections"))
        .order_by("district__code", "kind", "name")
    )
    kind = request.GET.get("kind")
    if kind in CellKind.values:
        cells = cells.filter(kind=kind)
    district = request.GET.get("district", "")
    if district and District.objects.filter(code=district).exists():
        cells = cells.filter(district__code=district)
    lang = _language(request)
    zh = lang.startswith("zh")
    cells = list(cells)
    features = [
        {
            "type": "Feature",
            "geometry": point_geometry(c.location),
            "properties": {
                "id": c.pk,
                "name": _name(c, zh),
                "kind": str(CellKind(c.kind).label),
                "status": c.status,
                "url": f"/zerowaste/cells/{c.pk}/" + ("" if zh else "?lang=en"),
            },
        }
        for c in cells
    ]
    outlines = [
        {
            "type": "Feature",
            "geometry": json.loads(d.boundary.geojson),
            "properties": {"name": d.name},
        }
        for d in District.objects.exclude(boundary=None)
    ]
    for c in cells:
        c.display_name = _name(c, zh)
        c.kind_label = CellKind(c.kind).label
    return _page(
        request,
        "zerowaste/board/index.html",
        {
            "cells": cells,
            "certified": sum(c.status == CellStatus.CERTIFIED for c in cells),
            "in_notice": sum(c.status == CellStatus.IN_NOTICE for c in cells),
            "cells_geojson": {"type": "FeatureCollection", "features": features},
            "districts_geojson": {"type": "FeatureCollection", "features": outlines},
            "kinds": CellKind.choices,
            "districts": District.objects.order_by("code"),
            "kind": kind,
            "district": district,
            "campaigns": Campaign.objects.all()[:5],
        },
    )


@require_GET
def board_cell(request, pk: int):
    cell = (
        Cell.objects.public()
        .select_related("district")
        .annotate(objection_count=Count("objections"))
        .filter(pk=pk)
        .first()
    )
    if cell is None:
        raise Http404
    zh = _language(request).startswith("zh")
    series = defaultdict(list)
    for a in cell.achievements.order_by("month"):
        series[a.indicator_id].append((a.month, a.value))
    charts = [
        achievement_chart_svg(
            title=i.name_zh if zh else i.name_en, unit=i.unit, points=series[i.pk]
        )
        for i in Indicator.objects.filter(kind=cell.kind)
        if series.get(i.pk)
    ]
    cell.display_name = _name(cell, zh)
    cell.kind_label = CellKind(cell.kind).label
    return _page(request, "zerowaste/board/cell.html", {"cell": cell, "charts": charts})


@require_GET
def board_campaign(request, pk: int):
    campaign = Campaign.objects.filter(pk=pk).first()
    if campaign is None:
        raise Http404
    zh = _language(request).startswith("zh")
    tally = campaign_tally(campaign_id=campaign.pk)
    most = max(tally.values(), default=0) or 1
    published = campaign.results_published_at is not None
    candidates = []
    for c in campaign.candidates.select_related("cell__district").order_by("id"):
        votes = tally.get(c.pk, 0)
        candidates.append(
            {
                "name": _name(c.cell, zh),
                "cell_id": c.cell_id,
                "district": c.cell.district.name,
                "statement": c.statement,
                "votes": votes,
                "bar": round(votes * 100 / most),
                "rank": c.rank if published else None,
                "final_score": c.final_score if published else None,
            }
        )
    if published:
        candidates.sort(key=lambda c: c["rank"] or 0)
    return _page(
        request,
        "zerowaste/board/campaign.html",
        {
            "campaign": campaign,
            "title": campaign.title_zh if zh else campaign.title_en,
            "rules": campaign.rules_zh if zh else campaign.rules_en,
            "phase": campaign_phase(campaign),
            "candidates": candidates,
            "removed": campaign_removed_votes(campaign_id=campaign.pk),
            "published": published,
        },
    )
