"""The catalogue cached per process (issue 13): behaviours and factors are read once per
catalogue version, and GET /behaviours rendered once per version and language; a publication,
however it is made, is seen by the very next request."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from carbon.api import serializers as api_serializers
from carbon.models import Behaviour, EmissionFactor
from carbon.services.catalogue import VERSION_KEY, emission_factor_publish
from tests.carbon.api_helpers import assert_error, claim_payload, steps_of
from tests.carbon.factories import BehaviourFactory, EmissionFactorFactory

BEHAVIOURS = "/api/v1/behaviours"
CLAIMS = "/api/v1/claims"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_self_budget_cut(settings):
    """The amounts asserted are the factor's; the new-account budget would cut the second."""
    settings.CARBON_SELF_NEW_ACCOUNT_DAILY_BUDGET_G = settings.CARBON_SELF_DAILY_BUDGET_G = 10**6


def listed(**headers) -> dict[str, dict]:
    response = APIClient().get(BEHAVIOURS, **headers)
    assert response.status_code == 200, response.content
    return {b["code"]: b for b in response.json()}


def versions(listing: dict, code: str) -> list[int]:
    return [f["version"] for f in listing[code]["current_factors"]]


def declare(client, km=10) -> dict:
    response = client.post(
        CLAIMS, claim_payload("metro", km, evidence={"type": "self"}), format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_the_listing_is_served_without_a_statement_until_the_catalogue_changes(
    metro, django_assert_num_queries
):
    first = listed()

    with django_assert_num_queries(0):
        again = listed()

    assert again == first
    assert versions(first, "metro") == [1]


def test_a_factor_published_by_the_service_is_listed_and_applied_at_once(metro, auth_api, resident):
    assert versions(listed(), "metro") == [1]
    assert declare(auth_api)["credited_g"] == 392  # 78.4 g/km x 10 km x 50 % (self)

    emission_factor_publish(
        behaviour=metro, grams_per_unit=Decimal("60"), methodology="2026 grid", source="EB"
    )

    assert versions(listed(), "metro") == [2]
    after = declare(auth_api)
    assert after["factor_version"] == 2 and after["credited_g"] == 300
    assert steps_of(after)["factor"]["grams_per_unit"] == "60.0000"


def test_a_factor_published_in_the_admin_is_listed_and_applied_at_once(
    metro, admin_client, auth_api
):
    assert versions(listed(), "metro") == [1]
    now = timezone.localtime()

    response = admin_client.post(
        "/admin/carbon/emissionfactor/add/",
        {
            "behaviour": metro.pk,
            "district": "",
            "grams_per_unit": "50",
            "unit": "km",
            "valid_from_0": now.strftime("%Y-%m-%d"),
            "valid_from_1": now.strftime("%H:%M:%S"),
            "methodology": "Admin-published",
            "source": "City EB",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert EmissionFactor.objects.filter(behaviour=metro).count() == 2
    assert versions(listed(), "metro") == [2]
    assert declare(auth_api)["credited_g"] == 250


def test_behaviours_added_changed_or_withdrawn_are_seen_at_once(metro, auth_api):
    assert "tree-planting" not in listed()
    tree = BehaviourFactory(
        code="tree-planting", unit="tree", evidence_types=["self"], max_quantity=Decimal("10")
    )
    EmissionFactorFactory(behaviour=tree, grams_per_unit=Decimal("1000"))
    assert versions(listed(), "tree-planting") == [1]

    # A cap lowered: the next claim's receipt counts with it.
    metro.daily_cap_g = 100
    metro.save(update_fields=["daily_cap_g"])
    assert listed()["metro"]["daily_cap_g"] == 100
    body = declare(auth_api)
    assert body["credited_g"] == 100 and steps_of(body)["daily_cap"]["cap_g"] == 100

    # Withdrawn: not listed, and claims for it are refused.
    metro.is_active = False
    metro.save(update_fields=["is_active"])
    assert "metro" not in listed()
    response = auth_api.post(
        CLAIMS, claim_payload("metro", 1, evidence={"type": "self"}), format="json"
    )
    assert_error(response, 400, "unknown_behaviour")


def test_a_publication_by_another_process_is_seen_through_the_shared_version(metro, auth_api):
    listed()
    # Another process's write: this process's signals do not see it (a queryset update
    # sends none either) ...
    Behaviour.objects.filter(pk=metro.pk).update(name="Metro (renamed elsewhere)")
    assert listed()["metro"]["name"] == "Metro ride"  # ... so the cached catalogue serves

    # ... until that process's signal replaces the shared version token.
    cache.set(VERSION_KEY, "replaced-by-another-process", timeout=None)

    assert listed()["metro"]["name"] == "Metro (renamed elsewhere)"


def test_the_listing_follows_a_factor_taking_force_later_without_a_publication(metro, monkeypatch):
    starts = timezone.now() + timedelta(hours=1)
    emission_factor_publish(
        behaviour=metro,
        grams_per_unit=Decimal("60"),
        methodology="from next hour",
        source="EB",
        valid_from=starts,
    )
    assert versions(listed(), "metro") == [1]

    later = starts + timedelta(minutes=1)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)

    assert versions(listed(), "metro") == [2]


def test_the_listing_is_rendered_once_per_language(metro, monkeypatch):
    rendered: list[str] = []

    class Counting(api_serializers.BehaviourSerializer):
        def __init__(self, *args, **kwargs):
            from django.utils.translation import get_language

            rendered.append(get_language())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(api_serializers, "BehaviourSerializer", Counting)

    for language in ("en", "zh-hans", "en", "zh-hans"):
        listed(HTTP_ACCEPT_LANGUAGE=language)

    assert rendered == ["en", "zh-hans"]


def test_a_claim_reads_the_catalogue_version_once(metro, auth_api, monkeypatch):
    """The behaviour and its factor come from one snapshot: one round trip to the shared
    cache for the version token per claim, not one per look-up (issue 13)."""
    declare(auth_api)  # the snapshot is loaded
    reads: list[str] = []
    real_get = cache.get

    def counted_get(key, *args, **kwargs):
        if key == VERSION_KEY:
            reads.append(key)
        return real_get(key, *args, **kwargs)

    monkeypatch.setattr(cache, "get", counted_get)

    body = declare(auth_api)

    assert body["status"] == "credited"
    assert steps_of(body)["factor"]["outcome"] == "applied"
    assert len(reads) == 1
