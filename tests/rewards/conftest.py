"""Fixtures of the rewards tests: a funded resident and their client, a merchant with an
offer, staff of that merchant (and of another), clients for each.

Fixtures every app shares (residents, API clients, the ledger check) are in tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.carbon.api_helpers import client_for
from tests.carbon.factories import UserFactory
from tests.rewards.factories import MerchantFactory, OfferFactory, StaffFactory, fund


@pytest.fixture
def funded(db):
    """A resident with 1,000 g available."""
    user = UserFactory()
    fund(user, 1000)
    return user


@pytest.fixture
def funded_api(funded):
    return client_for(funded)


@pytest.fixture
def merchant(db):
    return MerchantFactory(name="Green Grocer")


@pytest.fixture
def offer(merchant):
    """100 g, 50 in stock, no per-resident limits."""
    return OfferFactory(partner=merchant)


@pytest.fixture
def staff(merchant):
    return StaffFactory(merchant=merchant)


@pytest.fixture
def staff_api(staff):
    return client_for(staff.user)


@pytest.fixture
def other_staff_api(db):
    """A member of another merchant's staff."""
    return client_for(StaffFactory(merchant=MerchantFactory(name="Other Shop")).user)
