"""Demo data of zerowaste, run by `manage.py seed_demo` after the core's (registered from
ZerowasteConfig.ready()): the indicator set of every kind, a few dozen cells of every kind
across the demo districts (most certified, some in their notice period, a few still being
reviewed) with a year of monthly achievements, and one family award campaign in its voting
window for which the demo residents are verified voters (their transit cards are linked and
confirmed here, through the core's linking services).

Figures are plausible for Wuhan: about 1 kg of household waste per person a day (China's
urban average), sorting accuracy of 80-95 % in model communities, a recycling rate around
the national 2025 target of 35 %. Bulk writes and a fixed seed: fast, and idempotent (a
second run finds the cells by name and adds nothing)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from carbon.adapters.transit.cards import transit_card_link
from carbon.adapters.transit.models import TransitCard
from carbon.models import District, User
from carbon.services.linking import link_confirm_by_partner
from zerowaste.campaigns.models import Campaign, Candidate
from zerowaste.cells.models import (
    Achievement,
    Cell,
    CellKind,
    CellStatus,
    CellTransition,
    Indicator,
    IndicatorScore,
    validity_for,
)

K = CellKind
# code, zh, en, unit, higher is better, counts as kg avoided, typical monthly value (per cell)
COMMON = [
    ("waste_per_capita", "人均生活垃圾量", "Waste per person", "kg/person", False, False, 28),
    ("sorting_accuracy", "垃圾分类准确率", "Sorting accuracy", "%", True, False, 88),
    ("recycling_rate", "资源回收利用率", "Recycling rate", "%", True, False, 35),
    ("kg_diverted", "可回收物回收量", "Recyclables diverted", "kg", True, True, 600),
    ("single_use_avoided", "一次性用品减量", "Single-use items avoided", "items", True, False, 900),
]
FAMILY = [
    ("waste_per_capita", "人均生活垃圾量", "Waste per person", "kg/person", False, False, 26),
    ("sorting_accuracy", "垃圾分类准确率", "Sorting accuracy", "%", True, False, 92),
    ("kg_diverted", "可回收物回收量", "Recyclables diverted", "kg", True, True, 9),
]
NAMES = {
    K.SCHOOL: ("{d}第{n}实验小学", "{de} Experimental Primary School No. {n}"),
    K.COMMUNITY: ("{d}绿苑社区{n}期", "{de} Green Garden Community {n}"),
    K.SHOP: ("{d}零废弃生活馆{n}号店", "{de} Zero-Waste Store {n}"),
    K.OFFICE: ("{d}绿色办公大厦{n}座", "{de} Green Office Tower {n}"),
    K.HOTEL: ("{d}江景无废酒店{n}", "{de} Riverside Zero-Waste Hotel {n}"),
    K.SCENIC_AREA: ("{d}湖畔绿道景区{n}", "{de} Lakeside Greenway Park {n}"),
    K.FAMILY: ("{d}{s}家", "The {se} family of {de}"),
}
SURNAMES = [("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen")]
POPULATION = {
    K.SCHOOL: 1200,
    K.COMMUNITY: 3000,
    K.SHOP: 12,
    K.OFFICE: 400,
    K.HOTEL: 150,
    K.SCENIC_AREA: 60,
    K.FAMILY: 4,
}
PER_DISTRICT = {k: 2 for k in CellKind} | {K.FAMILY: 3}
CAMPAIGN_TITLE_EN = "Wuhan Zero-Waste Family Awards 2026"
CARDS = {
    "alice@demo.carbon.city": "6227 0099 1000 0001",
    "bo@demo.carbon.city": "6227 0099 1000 0002",
    "chen@demo.carbon.city": "6227 0099 1000 0003",
}


def _months(today: date, n: int = 12) -> list[date]:
    first = today.replace(day=1)
    months = []
    for _ in range(n):
        first = (first - timedelta(days=1)).replace(day=1)
        months.append(first)
    return sorted(months)


def _indicators() -> dict[str, list[tuple[Indicator, int]]]:
    out: dict[str, list[tuple[Indicator, int]]] = {}
    for kind in CellKind:
        rows = FAMILY if kind == K.FAMILY else COMMON
        out[kind] = []
        for position, (code, zh, en, unit, higher, avoided, typical) in enumerate(rows):
            indicator, _ = Indicator.objects.get_or_create(
                kind=kind,
                code=code,
                defaults=dict(
                    name_zh=zh,
                    name_en=en,
                    unit=unit,
                    higher_is_better=higher,
                    counts_as_kg_avoided=avoided,
                    position=position,
                ),
            )
            scale = 1 if unit in ("%", "kg/person") else POPULATION[kind] / 1200
            out[kind].append((indicator, max(1, round(typical * scale)) if scale != 1 else typical))
    return out


def _spot(rng: random.Random, district: District) -> Point:
    if district.boundary is None:
        return Point(114.30 + rng.uniform(-0.05, 0.05), 30.58 + rng.uniform(-0.05, 0.05), srid=4326)
    xmin, ymin, xmax, ymax = district.boundary.extent
    for _ in range(50):
        point = Point(rng.uniform(xmin, xmax), rng.uniform(ymin, ymax), srid=4326)
        if district.boundary.contains(point):
            return point
    return district.boundary.point_on_surface


def _cells(rng: random.Random, admin: User | None, now) -> list[Cell]:
    cells, history = [], []
    districts = list(District.objects.order_by("code"))
    for district in districts:
        zh_d = district.name.split(" ")[-1]
        en_d = district.name.split(" ")[0]
        for kind, count in PER_DISTRICT.items():
            for n in range(1, count + 1):
                surname_zh, surname_en = SURNAMES[(n + len(cells)) % len(SURNAMES)]
                zh, en = NAMES[kind]
                roll = rng.random()
                if roll < 0.72:
                    status = CellStatus.CERTIFIED
                elif roll < 0.9:
                    status = CellStatus.IN_NOTICE
                else:
                    status = CellStatus.UNDER_REVIEW
                cell = Cell(
                    kind=kind,
                    name=zh.format(d=zh_d, n=n, s=surname_zh),
                    name_en=en.format(de=en_d, n=n, se=surname_en),
                    description="",
                    district=district,
                    location=_spot(rng, district),
                    contact_name="" if kind == K.FAMILY else "办公室 Office",
                    contact_phone="" if kind == K.FAMILY else f"027-8{rng.randrange(10**6):06d}",
                    population=POPULATION[kind],
                    status=status,
                )
                if status == CellStatus.CERTIFIED:
                    cell.certified_at = now - timedelta(days=rng.randrange(20, 600))
                    cell.expires_at = cell.certified_at + validity_for(kind)
                elif status == CellStatus.IN_NOTICE:
                    cell.notice_ends_at = now + timedelta(days=rng.randrange(1, 7))
                cells.append(cell)
    Cell.objects.bulk_create(cells)
    for cell in cells:
        steps = [
            ("apply", CellStatus.APPLIED, CellStatus.APPLIED),
            ("start_review", CellStatus.APPLIED, CellStatus.UNDER_REVIEW),
        ]
        if cell.status in (CellStatus.IN_NOTICE, CellStatus.CERTIFIED):
            steps.append(("open_notice", CellStatus.UNDER_REVIEW, CellStatus.IN_NOTICE))
        if cell.status == CellStatus.CERTIFIED:
            steps.append(("certify", CellStatus.IN_NOTICE, CellStatus.CERTIFIED))
        for action, before, after in steps:
            history.append(
                CellTransition(
                    cell=cell,
                    action=action,
                    from_status=before,
                    to_status=after,
                    actor=None if action == "apply" else admin,
                    reason="Demo data.",
                )
            )
    CellTransition.objects.bulk_create(history)
    return cells


def _achievements(rng: random.Random, cells: list[Cell], indicators, now) -> None:
    months = _months(timezone.localdate(now))
    rows, scores = [], []
    for cell in cells:
        for indicator, typical in indicators[cell.kind]:
            # A year of steady improvement with some noise: what a certified cell shows.
            trend = -0.02 if not indicator.higher_is_better else 0.015
            level = typical * rng.uniform(0.85, 1.1)
            for i, month in enumerate(months):
                value = level * (1 + trend * i) * rng.uniform(0.93, 1.07)
                if indicator.unit == "%":
                    value = min(value, 99.5)
                rows.append(
                    Achievement(
                        cell=cell,
                        indicator=indicator,
                        month=month,
                        value=Decimal(f"{value:.2f}"),
                    )
                )
            scores.append(
                IndicatorScore(
                    cell=cell, indicator=indicator, score=rng.randrange(70, 98), note="Demo."
                )
            )
    Achievement.objects.bulk_create(rows)
    IndicatorScore.objects.bulk_create(scores)


def _campaign(now) -> Campaign:
    campaign = Campaign.objects.filter(title_en=CAMPAIGN_TITLE_EN).first()
    if campaign is not None:
        return campaign
    campaign = Campaign.objects.create(
        title_zh="2026 年度武汉市“无废家庭”评选",
        title_en=CAMPAIGN_TITLE_EN,
        rules_zh=(
            "候选家庭均为已认证的无废家庭细胞。实名认证居民（已绑定并确认交通卡或合作平台账户）"
            "每天可投 3 票，每天对同一家庭最多投 1 票。最终得分 = 公众投票 30% + 评审团 70%。"
            "异常投票（突发刷票、新注册账户集中同投、连续机器投票）经复核后撤销，撤销票数公开。"
        ),
        rules_en=(
            "Candidates are certified zero-waste family cells. Verified residents (a transit "
            "card or partner account linked and confirmed) may cast 3 votes a day, at most one "
            "per family a day. Final score = 30 % public vote + 70 % jury. Anomalous votes "
            "(bursts, clusters of new accounts voting alike, serial voting) are reversed after "
            "review, and the number removed is published."
        ),
        nomination_opens_at=now - timedelta(days=30),
        nomination_closes_at=now - timedelta(days=3),
        voting_opens_at=now - timedelta(days=2),
        voting_closes_at=now + timedelta(days=12),
        votes_per_day=3,
        # The demo residents were created a moment ago; a real campaign keeps the default.
        min_account_days=0,
    )
    families = Cell.objects.filter(kind=K.FAMILY, status=CellStatus.CERTIFIED).order_by("id")[:8]
    Candidate.objects.bulk_create(
        Candidate(
            campaign=campaign,
            cell=cell,
            statement="坚持垃圾分类、自带购物袋、旧物改造。 Sorting, own bags, upcycling.",
        )
        for cell in families
    )
    return campaign


def _verified_voters() -> None:
    """Link and confirm a transit card for each demo resident (consent is seed_demo's)."""
    for email, number in CARDS.items():
        user = User.objects.filter(email=email).first()
        if user is None or TransitCard.objects.linked().filter(user=user).exists():
            continue
        linked = transit_card_link(user=user, card_number=number, label="Demo", consent=True)
        link_confirm_by_partner(link=linked.card)


def zerowaste_demo_seed(*, stdout) -> None:
    now = timezone.now()
    rng = random.Random(20261203)
    with transaction.atomic():
        indicators = _indicators()
        if not Cell.objects.filter(name_en__endswith="Experimental Primary School No. 1").exists():
            admin = User.objects.filter(email="admin@demo.carbon.city").first()
            cells = _cells(rng, admin, now)
            _achievements(rng, cells, indicators, now)
            stdout.write(f"zero-waste cells: {len(cells)}")
        campaign = _campaign(now)
    _verified_voters()
    stdout.write(f"zero-waste campaign {campaign.pk}: {campaign.title_en} (voting open)")
