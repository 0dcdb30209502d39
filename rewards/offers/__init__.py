"""Offers: what residents spend grams on, its stock, limits, validity and picture."""
