"""Signals of the campaigns slice, sent after the writes commit: what a live board (the
core's leaderboard engine, once it registers a campaign source) listens to. The votes are
the source of truth; a board rebuilt from zerowaste.campaigns.tally gives the same result."""

from django.dispatch import Signal

#: A counted vote was recorded: campaign_id, candidate_id.
vote_recorded = Signal()
#: The anomaly review (or an administrator) reversed votes: campaign_id, and counts, a dict
#: candidate_id -> number of votes no longer counted.
votes_reversed = Signal()
