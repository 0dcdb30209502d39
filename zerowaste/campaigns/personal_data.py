"""The campaigns slice's personal data: a resident's votes.

Erasure unlinks the votes from the person and keeps them counted: a vote was a public act
already in the tally (and perhaps in published results), and removing it would let an
erasure rewrite a result. What the anomaly review needs of the voter (account age and
registration day at the time) was copied onto each vote, so the review still works."""

from __future__ import annotations

from typing import Any

from carbon.models import User
from carbon.personal_data import PersonalData
from zerowaste.campaigns.models import Vote


def votes_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "campaign": v.campaign_id,
            "candidate": v.candidate_id,
            "day": v.day.isoformat(),
            "created_at": v.created_at.isoformat(),
            "reversed": v.reversal_id is not None,
        }
        for v in Vote.objects.filter(voter=user).order_by("created_at", "id")
    ]


def votes_erase(*, user: User) -> None:
    Vote.objects.filter(voter=user).update(voter=None, idempotency_key="")


PROVIDERS = (PersonalData("zerowaste_campaign_votes", (Vote,), votes_export, votes_erase),)
