"""Fixtures of the offsets tests: the bank (a partner with a signing key and, for the tests
that send batches, a local server over HTTP), its programme, a second bank, and a resident
with green-travel and waste points."""

from __future__ import annotations

import pytest

from carbon.models import Partner
from carbon.services.partners import partner_create
from tests.carbon.api_helpers import client_for
from tests.partner_server import partner_server
from tests.rewards.offsets.factories import BankProgrammeFactory, award


@pytest.fixture
def bank(db):
    return partner_create(name="Hankou Partner Bank", kind=Partner.Kind.BANK)


@pytest.fixture
def other_bank(db):
    return partner_create(name="Jianghan Rural Bank", kind=Partner.Kind.BANK)


@pytest.fixture
def programme(bank):
    return BankProgrammeFactory(bank=bank.partner)


@pytest.fixture
def bank_server(bank):
    """The bank's endpoint over real HTTP; it takes every batch unless a test says otherwise."""
    with partner_server(bank.secret) as server:
        bank.partner.endpoint_url = server.url + "/api/"
        bank.partner.save(update_fields=["endpoint_url"])
        server.handler = lambda request: (202, {"received": len(request.json["offsets"])})
        yield server


@pytest.fixture
def saver(resident):
    """A resident with 3000 g of green travel and 2000 g of waste points."""
    award(resident, 3_000, "green_travel")
    award(resident, 2_000, "waste")
    return resident


@pytest.fixture
def saver_api(saver):
    return client_for(saver)
