"""Fixtures shared by the carbon tests: behaviours of the real catalogue, the transit
operator and demo network, the stand-in transit feed.

Fixtures every app's tests use (residents, API clients, the ledger check) are in
tests/conftest.py; factories are in factories.py and helpers for acting over the API in
api_helpers.py. A fixture used by one test module stays in that module."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from carbon.adapters.transit.network import forget_network
from carbon.services.partners import partner_create
from carbon.verifiers import reset_registry
from tests.carbon.factories import BehaviourFactory, catalogue_behaviour


@pytest.fixture(autouse=True)
def _fresh_network():
    """The transit network graph is cached per process; each test's database has its own."""
    forget_network()
    yield
    forget_network()


# --- behaviours -----------------------------------------------------------------------------
# Each is the catalogue's behaviour (carbon/demo/catalogue.py), changed only where the tests
# need a variant: the numbers the tests assert on come from here.


@pytest.fixture
def metro(db):
    """78.4 g/km, max 120 km a claim; no daily cap, so a test may credit several long rides."""
    return catalogue_behaviour("metro", daily_cap_g=None)


@pytest.fixture
def bus(db):
    """150 g a trip, max 10 trips a claim; no daily cap."""
    return catalogue_behaviour("bus", daily_cap_g=None)


@pytest.fixture
def own_bag(db):
    """5 g a use, max 5 uses a claim; a daily cap of 10 g (two uses), quick to reach."""
    return catalogue_behaviour("own-bag", daily_cap_g=10)


@pytest.fixture
def bike(db):
    """Shared bike rides from partner feeds: 93.3 g/km, daily cap 2000 g."""
    return catalogue_behaviour("bike-share")


@pytest.fixture
def recycling(db):
    """Sorted recyclables from partner feeds or photos: 300 g/kg."""
    return catalogue_behaviour("recycling")


@pytest.fixture
def unfactored(db):
    """A behaviour no emission factor covers yet: its claims wait in the review queue."""
    return BehaviourFactory(
        code="tree-planting",
        name="Tree planting",
        unit="tree",
        evidence_types=["self"],
        category="energy",
        max_quantity=Decimal("10"),
        claim_window_days=7,
    )


# --- transit ---------------------------------------------------------------------------------


@pytest.fixture
def operator(db):
    """The metro operator (credentials and partner), named as in the demo network's lines.csv."""
    return partner_create(name="Wuhan Metro", kind="transit_operator")


@pytest.fixture
def demo_network(operator):
    call_command("load_transit", demo=True, verbosity=0)


@pytest.fixture
def transit(demo_network, metro, bus):
    """The demo network and both behaviours."""


@pytest.fixture
def transit_feed(settings):
    """Transit evidence checked by a stand-in that trusts it, for rules that apply to any
    feed (consent, one act one credit) without a network of taps and trips."""
    settings.CARBON_VERIFIERS = {
        **settings.CARBON_VERIFIERS,
        "transit": "tests.carbon.api_helpers.TransitCardTestVerifier",
    }
    reset_registry()


@pytest.fixture
def bike_partner(bike):
    """A bike-share platform allowed to report bike-share events; its key and secret."""
    issued = partner_create(name="QingJu", kind="platform")
    issued.partner.behaviours.add(bike)
    return issued
