"""Reconciling our records with Stripe's objects (`manage.py payments_reconcile`).

Every object we create at Stripe carries the outbox row it came from (metadata
`carbon_owner`). Each such object must match exactly one outbox row that recorded its id,
and each row that recorded an id must find its object at Stripe; our payments and refunds
must agree with their rows. Objects without our marker are not ours (another integration on
the same account) and are left alone."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from rewards.payments.gateway import StripeUnreachable, payments_configured, stripe_list
from rewards.payments.models import Payment, PaymentRefund, RequestStatus, StripeRequest

#: outbox operation -> the Stripe list it is found in
KINDS = {
    "payment_intent.create": "payment_intents",
    "refund.create": "refunds",
    "account.create": "accounts",
    "transfer.create": "transfers",
}


@dataclass
class Reconciliation:
    mismatches: list[str] = field(default_factory=list)
    checked_objects: int = 0
    checked_records: int = 0
    stripe_reached: bool = False

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _local(out: Reconciliation) -> None:
    requests = {r.owner: r for r in StripeRequest.objects.all()}
    out.checked_records = len(requests)
    for payment in Payment.objects.exclude(stripe_id=None):
        row = requests.get(f"payment:{payment.pk}")
        if row is not None and row.stripe_id and row.stripe_id != payment.stripe_id:
            out.mismatches.append(
                f"payment {payment.pk}: {payment.stripe_id} here, {row.stripe_id} in its request"
            )
    for refund in PaymentRefund.objects.exclude(stripe_id=None):
        row = requests.get(f"refund:{refund.pk}")
        if row is None or row.stripe_id != refund.stripe_id:
            out.mismatches.append(f"refund {refund.pk}: {refund.stripe_id} not its request's")


def payments_reconcile() -> Reconciliation:
    out = Reconciliation()
    _local(out)
    if not payments_configured():
        return out
    rows = list(StripeRequest.objects.all())
    by_owner = {r.owner: r for r in rows}
    seen: dict[str, list[str]] = defaultdict(list)
    stripe_ids: set[str] = set()
    try:
        for operation, kind in KINDS.items():
            for obj in stripe_list(kind=kind):
                owner = (obj.get("metadata") or {}).get("carbon_owner")
                if not owner:
                    continue
                out.checked_objects += 1
                stripe_ids.add(obj["id"])
                seen[owner].append(obj["id"])
                row = by_owner.get(owner)
                if row is None or row.operation != operation:
                    out.mismatches.append(f"{obj['id']}: no record of ours for {owner}")
                elif row.status != RequestStatus.DONE or row.stripe_id != obj["id"]:
                    out.mismatches.append(
                        f"{obj['id']}: {owner} is {row.status} with {row.stripe_id or 'no id'}"
                    )
    except StripeUnreachable as exc:
        out.mismatches.append(f"Stripe did not answer: {exc}")
        return out
    out.stripe_reached = True
    for owner, ids in seen.items():
        if len(ids) > 1:
            out.mismatches.append(f"{owner}: {len(ids)} objects at Stripe ({', '.join(ids)})")
    for row in rows:
        if row.status == RequestStatus.DONE and row.stripe_id not in stripe_ids:
            out.mismatches.append(f"{row.owner}: {row.stripe_id} not found at Stripe")
    return out
