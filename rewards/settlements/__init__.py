"""Paying merchants what the platform owes them, by Stripe Connect transfers."""
