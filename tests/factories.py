"""factory-boy factories for the carbon core."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.utils import timezone

from carbon.models import Behaviour, Community, District, EmissionFactor, Partner, User


def _square(x: float, y: float, size: float = 0.05) -> MultiPolygon:
    return MultiPolygon(Polygon.from_bbox((x, y, x + size, y + size)), srid=4326)


class DistrictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = District
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"district-{n}")
    name = factory.Sequence(lambda n: f"District {n}")
    boundary = factory.LazyFunction(lambda: _square(114.25, 30.55))


class CommunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Community
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"community-{n}")
    name = factory.Sequence(lambda n: f"Community {n}")
    district = factory.SubFactory(DistrictFactory)
    boundary = factory.LazyFunction(lambda: _square(114.26, 30.56, 0.01))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"resident{n}@example.org")
    display_name = factory.Sequence(lambda n: f"Resident {n}")
    role = User.Role.RESIDENT
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner

    name = factory.Sequence(lambda n: f"Partner {n}")
    kind = Partner.Kind.PLATFORM


class BehaviourFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Behaviour
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"behaviour-{n}")
    name = factory.Sequence(lambda n: f"Behaviour {n}")
    category = "green_travel"
    unit = "km"
    evidence_types = factory.LazyFunction(lambda: ["self"])
    max_quantity = Decimal("100")
    claim_window_days = 7
    credit_lifetime_days = 365


class EmissionFactorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmissionFactor

    behaviour = factory.SubFactory(BehaviourFactory)
    version = factory.Sequence(lambda n: n + 1)
    grams_per_unit = Decimal("10")
    unit = factory.LazyAttribute(lambda o: o.behaviour.unit)
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
    methodology = "Test methodology"
    source = "Test source"
