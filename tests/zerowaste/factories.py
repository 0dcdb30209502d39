"""factory-boy factories for zerowaste: indicators, cells in any lifecycle status, campaigns
in their voting window with family candidates; and `verified`, which gives a resident the
confirmed transit card that makes them a verified voter."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.gis.geos import Point
from django.utils import timezone

from carbon.adapters.transit.cards import transit_card_link
from carbon.models import User
from carbon.services.linking import link_confirm_by_partner
from tests.carbon.factories import DistrictFactory
from zerowaste.campaigns.models import Campaign, Candidate
from zerowaste.cells.models import Cell, CellKind, CellStatus, Indicator, validity_for


class IndicatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Indicator
        django_get_or_create = ("kind", "code")

    kind = CellKind.SCHOOL
    code = "kg_diverted"
    name_zh = "可回收物回收量"
    name_en = "Recyclables diverted"
    unit = "kg"
    counts_as_kg_avoided = True


class CellFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cell

    kind = CellKind.SCHOOL
    name = factory.Sequence(lambda n: f"第{n}小学")
    name_en = factory.Sequence(lambda n: f"School {n}")
    district = factory.SubFactory(DistrictFactory)
    location = factory.LazyFunction(lambda: Point(114.3, 30.58, srid=4326))
    status = CellStatus.CERTIFIED
    certified_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
    expires_at = factory.LazyAttribute(lambda o: o.certified_at + validity_for(o.kind))

    class Params:
        in_notice = factory.Trait(
            status=CellStatus.IN_NOTICE,
            certified_at=None,
            expires_at=None,
            notice_ends_at=factory.LazyFunction(lambda: timezone.now() + timedelta(days=5)),
        )
        applied = factory.Trait(status=CellStatus.APPLIED, certified_at=None, expires_at=None)
        family = factory.Trait(kind=CellKind.FAMILY, name=factory.Sequence(lambda n: f"{n}号家庭"))


class CampaignFactory(factory.django.DjangoModelFactory):
    """Voting open since yesterday for two weeks; 3 votes a day; no minimum account age."""

    class Meta:
        model = Campaign

    title_zh = factory.Sequence(lambda n: f"无废家庭评选 {n}")
    title_en = factory.Sequence(lambda n: f"Zero-waste family awards {n}")
    rules_zh = "每天 3 票，每个家庭每天 1 票。"
    rules_en = "3 votes a day, one per family a day."
    nomination_opens_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=20))
    nomination_closes_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=2))
    voting_opens_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    voting_closes_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=14))
    votes_per_day = 3
    min_account_days = 0


class CandidateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Candidate

    campaign = factory.SubFactory(CampaignFactory)
    cell = factory.SubFactory(CellFactory, family=True)
    statement = "自带购物袋"
    jury_score = None


def campaign_with_candidates(n: int = 4, **kwargs) -> tuple[Campaign, list[Candidate]]:
    campaign = CampaignFactory(**kwargs)
    district = DistrictFactory()
    return campaign, [
        CandidateFactory(campaign=campaign, cell=CellFactory(family=True, district=district))
        for _ in range(n)
    ]


_cards = itertools.count(10_000_000)


def verified(user: User) -> User:
    """Link and confirm a transit card: the proof of control that makes a verified voter."""
    linked = transit_card_link(user=user, card_number=f"6227{next(_cards):012d}", consent=True)
    link_confirm_by_partner(link=linked.card)
    return user


def jury(candidates, scores) -> None:
    for candidate, score in zip(candidates, scores, strict=True):
        candidate.jury_score = Decimal(score)
        candidate.save(update_fields=["jury_score"])
