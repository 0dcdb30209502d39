"""The payments slice's personal data: the payments and refunds a person asked for on a
partner's behalf. Erasure unties them from the person; the money records stay for the books."""

from __future__ import annotations

from typing import Any

from carbon.models import User
from carbon.personal_data import PersonalData
from rewards.payments.models import Payment, PaymentRefund


def payments_export(*, user: User) -> list[dict[str, Any]]:
    rows = [
        {
            "payment": p.reference,
            "payer": p.payer.name,
            "amount_fen": p.amount_fen,
            "status": p.status,
            "created_at": p.created_at.isoformat(),
        }
        for p in Payment.objects.filter(requested_by=user).select_related("payer")
    ]
    rows += [
        {
            "refund_of": r.payment.reference,
            "amount_fen": r.amount_fen,
            "reason": r.reason,
            "status": r.status,
            "created_at": r.created_at.isoformat(),
        }
        for r in PaymentRefund.objects.filter(requested_by=user).select_related("payment")
    ]
    return rows


def payments_erase(*, user: User) -> None:
    Payment.objects.filter(requested_by=user).update(requested_by=None)
    PaymentRefund.objects.filter(requested_by=user).update(requested_by=None)


PROVIDERS = (PersonalData("payments", (Payment, PaymentRefund), payments_export, payments_erase),)
