"""factory-boy factories for the carbon core, and `catalogue_behaviour`: the behaviours of
the real catalogue (carbon/demo/catalogue.py) as tests need them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.db.models import Max
from django.utils import timezone

from carbon.models import (
    Behaviour,
    Claim,
    ClaimStatus,
    Community,
    District,
    EmissionFactor,
    Partner,
    User,
)
from carbon.services.catalogue import catalogue_seed


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


def _next_factor_version(behaviour: Behaviour) -> int:
    # After the behaviour's latest version: a global sequence would collide with the
    # version 1 that catalogue_seed publishes.
    latest = EmissionFactor.objects.filter(behaviour=behaviour).aggregate(v=Max("version"))["v"]
    return (latest or 0) + 1


class EmissionFactorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmissionFactor

    behaviour = factory.SubFactory(BehaviourFactory)
    version = factory.LazyAttribute(lambda o: _next_factor_version(o.behaviour))
    grams_per_unit = Decimal("10")
    unit = factory.LazyAttribute(lambda o: o.behaviour.unit)
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
    methodology = "Test methodology"
    source = "Test source"


class RefusedClaimFactory(factory.django.DjangoModelFactory):
    """A self-declared claim refused just now (inside the appeal window), written directly:
    a refusal the test controls, for appeals. Pass `user` and `behaviour`."""

    class Meta:
        model = Claim

    quantity = 1
    occurred_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    evidence_type = "self"
    idempotency_key = factory.LazyFunction(lambda: str(uuid.uuid4()))
    request_hash = "x"
    status = ClaimStatus.REJECTED
    receipt = factory.LazyFunction(
        lambda: {"status": "rejected", "code": "duplicate_photo", "reason": "Looks reused."}
    )
    decided_at = factory.LazyFunction(timezone.now)


def catalogue_behaviour(code: str, **changes) -> Behaviour:
    """The catalogue's behaviour `code` with its version-1 factor, in force since a year ago.
    `changes` alter the behaviour row where a test needs a variant of the catalogue (a cap
    lifted or lowered, other evidence types); the factor stays the catalogue's."""
    (behaviour,) = catalogue_seed(valid_from=timezone.now() - timedelta(days=365), codes={code})
    if changes:
        for field, value in changes.items():
            setattr(behaviour, field, value)
        behaviour.save(update_fields=list(changes))
    return behaviour
