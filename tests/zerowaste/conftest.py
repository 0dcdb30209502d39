"""Fixtures of the zerowaste tests: a verified voter and their client, a campaign in its
voting window with four family candidates, cells in notice and certified, an operator.

Fixtures every app shares (residents, API clients, the admin client) are in tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.carbon.api_helpers import client_for
from tests.carbon.factories import UserFactory
from tests.zerowaste.factories import (
    CellFactory,
    IndicatorFactory,
    campaign_with_candidates,
    verified,
)


@pytest.fixture
def voter(db):
    return verified(UserFactory())


@pytest.fixture
def voter_api(voter):
    return client_for(voter)


@pytest.fixture
def campaign(db):
    """Open for voting, 3 votes a day, four family candidates."""
    return campaign_with_candidates(4)


@pytest.fixture
def notice_cell(db):
    return CellFactory(in_notice=True)


@pytest.fixture
def certified_cell(db):
    cell = CellFactory()
    IndicatorFactory(kind=cell.kind)
    return cell
