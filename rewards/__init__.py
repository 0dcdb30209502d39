"""Offers, vouchers and mortgage-interest offsets: not built yet (a later issue)."""
