"""Merchant staff, their invitations, and vouchers redeemed at the till (settlement lines)."""
