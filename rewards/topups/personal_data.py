"""The top-up slice's personal data: a resident's top-ups. The export never holds the card
number; erasure unties the rows from the person and wipes any card number still kept, while
the ledger hold and the operator's record (request id, amount, reference) stay."""

from __future__ import annotations

from typing import Any

from carbon.models import User
from carbon.personal_data import PersonalData
from rewards.topups.models import TopUp


def topups_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "request_id": str(t.request_id),
            "reference": t.reference,
            "operator": t.operator.name,
            "card_last_digits": t.card_last_digits,
            "amount_cny": str(t.amount_cny),
            "status": t.status,
            "operator_ref": t.operator_ref,
            "created_at": t.created_at.isoformat(),
            "settled_at": t.settled_at.isoformat() if t.settled_at else None,
        }
        for t in TopUp.objects.filter(user=user).select_related("operator").order_by("created_at")
    ]


def topups_erase(*, user: User) -> None:
    """A top-up still queued can no longer be sent without its card number: the next send
    attempt fails it and gives the points back (to the erased account, which keeps its
    ledger)."""
    TopUp.objects.filter(user=user).update(
        user=None, card=None, card_last_digits="", card_number_encrypted=None
    )


PROVIDERS = (PersonalData("transit_topups", (TopUp,), topups_export, topups_erase),)
