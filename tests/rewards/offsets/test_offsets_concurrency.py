"""Offset requests under real concurrency (PostgreSQL, one connection per thread, released
together): the monthly cap and the programme's budget are never exceeded, one key makes one
offset, and the ledger stays balanced."""

from __future__ import annotations

import pytest

from carbon.errors import DomainError
from carbon.services.ledger import enterprise_account
from carbon.services.ledger_check import ledger_check
from carbon.services.partners import partner_create
from rewards.offsets.models import Offset
from rewards.offsets.services.links import loan_link_create, loan_link_decide
from rewards.offsets.services.requests import offset_request
from tests.carbon.api_helpers import new_key
from tests.carbon.factories import UserFactory
from tests.carbon.test_ledger_concurrency import run_together
from tests.rewards.offsets.factories import BankProgrammeFactory, award

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def programme():
    bank = partner_create(name="Hankou Partner Bank", kind="bank").partner
    return BankProgrammeFactory(bank=bank)


def linked_saver(programme, grams: int, n: int):
    user = UserFactory()
    award(user, grams)
    link = loan_link_create(
        user=user, programme=programme, loan_reference=f"LOAN{n:06d}", consent=True
    ).link
    loan_link_decide(
        bank=programme.bank,
        link_token=link.link_token,
        loan_reference=f"LOAN{n:06d}",
        confirmed=True,
        bank_link_id=f"HK-{n}",
    )
    return user


def outcome(result) -> str:
    if isinstance(result, DomainError):
        return str(result.code)
    if isinstance(result, BaseException):
        raise result
    return "created" if result.created else "returned"


def test_one_residents_concurrent_requests_stop_at_the_monthly_cap(programme):
    user = linked_saver(programme, 20_000, 1)  # the cap is 5000 g a month
    results = run_together(
        12,
        lambda i: offset_request(
            user=user, programme_id=programme.pk, grams=1_000, idempotency_key=new_key()
        ),
    )
    outcomes = [outcome(r) for r in results]
    assert outcomes.count("created") == 5
    assert outcomes.count("offset_monthly_cap") == 7
    assert sum(Offset.objects.values_list("grams", flat=True)) == 5_000
    assert ledger_check() == []


def test_many_residents_at_once_never_exceed_the_budget(programme):
    programme.budget_fen = 3_000  # 30 CNY = 15 kg; each asks 2 kg (4 CNY): 7 fit
    programme.save()
    users = [linked_saver(programme, 2_000, n) for n in range(12)]
    results = run_together(
        12,
        lambda i: offset_request(
            user=users[i], programme_id=programme.pk, grams=2_000, idempotency_key=new_key()
        ),
    )
    outcomes = [outcome(r) for r in results]
    assert outcomes.count("created") == 7, outcomes
    assert outcomes.count("offset_budget_exhausted") == 5
    assert sum(Offset.objects.values_list("value_fen", flat=True)) == 2_800
    assert enterprise_account(partner=programme.bank).credits_pending == 14_000
    assert ledger_check() == []


def test_one_key_sent_at_once_makes_one_offset(programme):
    user = linked_saver(programme, 5_000, 2)
    key = new_key()
    results = run_together(
        8,
        lambda i: offset_request(
            user=user, programme_id=programme.pk, grams=1_000, idempotency_key=key
        ),
    )
    outcomes = [outcome(r) for r in results]
    assert outcomes.count("created") == 1 and outcomes.count("returned") == 7
    assert Offset.objects.count() == 1
    assert ledger_check() == []
