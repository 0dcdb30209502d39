"""The seam between vouchers and the fulfilment of transit top-ups.

A top-up voucher is issued `processing`, its grams held. `topup_fulfilment_start` is called
once, inside the redemption's transaction, to start the top-up at the operator; the top-up
slice answers later with `voucher_fulfilled` (the hold is posted) or
`voucher_fulfilment_failed` (voided: the grams come back), both in rewards.vouchers.services.

For now `topup_fulfilment_start` records nothing: the lead wires it to the top-up slice
(rewards/topups/, built in parallel), which will write its outbox row here, in the same
transaction, so a rolled-back redemption leaves no request to send.
"""

from __future__ import annotations

from rewards.vouchers.models import Voucher


def topup_fulfilment_start(voucher: Voucher) -> None:
    """Start fulfilling a top-up voucher. Not wired yet (see the module's docstring)."""
    return None
