"""The rewards services refuse a non-resident even when called without the API (an admin
action, a job, a script): nothing is held, issued or linked."""

from __future__ import annotations

import pytest

from carbon.errors import ErrorCode
from carbon.models import Transfer
from carbon.services.residents import NotAResident
from rewards.vouchers.models import Voucher
from rewards.vouchers.services import voucher_issue
from tests.carbon.api_helpers import new_key
from tests.rewards.factories import StaffFactory

pytestmark = pytest.mark.django_db


def test_a_merchant_staff_member_cannot_redeem_through_the_service(offer):
    staff = StaffFactory().user
    with pytest.raises(NotAResident) as refused:
        voucher_issue(user=staff, offer_id=offer.pk, idempotency_key=new_key())
    assert refused.value.code == ErrorCode.RESIDENTS_ONLY
    assert not Voucher.objects.exists() and not Transfer.objects.exists()
