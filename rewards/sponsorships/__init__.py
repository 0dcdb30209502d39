"""Sponsors (a merchant or an enterprise) funding a reward budget by card."""
