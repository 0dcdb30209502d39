"""The seam between vouchers and the fulfilment of transit top-ups (rewards/topups/).

A top-up voucher is issued `processing`, its grams held. `topup_fulfilment_start` runs once,
inside the redemption's transaction, and writes the top-up slice's outbox row there, so a
rolled-back redemption leaves no request to send. The top-up slice settles the hold itself
(posts it when the operator confirms, voids it on a refusal or silence) and then says so with
its `topup_settled` signal; `rewards.vouchers.services.topup_settled_receive` turns that into
the voucher's outcome: redeemed, or failed with the grams back. The top-up slice never imports this one.
"""

from __future__ import annotations

from rewards.topups.models import TopUp
from rewards.topups.services import topup_request
from rewards.vouchers.models import Voucher


def topup_fulfilment_start(voucher: Voucher, *, card_number: str) -> TopUp:
    """Ask the offer's transit operator to top `card_number` (one of the resident's linked
    cards) up by the offer's value, paid for by the voucher's hold."""
    return topup_request(
        user=voucher.user,
        hold=voucher.hold,
        operator=voucher.partner,
        amount_cny=voucher.partner_value_cny,
        card_number=card_number,
        reference=f"voucher:{voucher.pk}",
    )
