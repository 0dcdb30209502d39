"""Vouchers: redeeming an offer (a ledger hold), cancelling, expiring, a top-up's outcome."""
