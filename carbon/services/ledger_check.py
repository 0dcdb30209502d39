"""Ledger invariants, checked by `manage.py ledger_check`, the tests and operators."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, Sum
from django.utils import timezone

from carbon.models import (
    Account,
    AccountKind,
    Lot,
    LotAllocation,
    Transfer,
    TransferCode,
    TransferFlag,
)


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


def _sums(qs, key: str) -> dict[int, int]:
    return {row[key]: row["s"] for row in qs.values(key).annotate(s=Sum("amount_g")).order_by()}


def ledger_check(*, now: datetime | None = None) -> list[Violation]:
    now = now or timezone.now()
    out: list[Violation] = []

    totals = Account.objects.aggregate(
        dp=Sum("debits_posted"),
        cp=Sum("credits_posted"),
        dpe=Sum("debits_pending"),
        cpe=Sum("credits_pending"),
    )
    if (totals["dp"] or 0) != (totals["cp"] or 0):
        out.append(
            Violation(
                "debits_equal_credits", f"posted debits {totals['dp']} != credits {totals['cp']}"
            )
        )
    if (totals["dpe"] or 0) != (totals["cpe"] or 0):
        out.append(
            Violation(
                "debits_equal_credits", f"pending debits {totals['dpe']} != credits {totals['cpe']}"
            )
        )

    posted_flags = [TransferFlag.POSTED, TransferFlag.POST_PENDING]
    posted = Transfer.objects.filter(flag__in=posted_flags)
    open_pending = Transfer.objects.unresolved_pending()
    expected = {
        "debits_posted": _sums(posted, "debit_account"),
        "credits_posted": _sums(posted, "credit_account"),
        "debits_pending": _sums(open_pending, "debit_account"),
        "credits_pending": _sums(open_pending, "credit_account"),
    }
    awarded = _sums(Transfer.objects.filter(code=TransferCode.AWARD), "credit_account")
    reversed_ = _sums(Transfer.objects.filter(code=TransferCode.REVERSAL), "debit_account")
    for account in Account.objects.all().only(
        "id",
        "lifetime_g",
        "kind",
        "shard",
        "user_id",
        "debits_posted",
        "credits_posted",
        "debits_pending",
        "credits_pending",
        "debits_must_not_exceed_credits",
    ):
        for counter, sums in expected.items():
            want = sums.get(account.pk, 0)
            have = getattr(account, counter)
            if want != have:
                out.append(
                    Violation(
                        "cached_balance", f"{account} {counter} is {have}, transfers say {want}"
                    )
                )
        # GET /me's lifetime: a resident's awards less the reversals taken back from them.
        # Only residents earn; the grams a pool gives back (a reversal too) are no earnings.
        earned = (
            awarded.get(account.pk, 0) - reversed_.get(account.pk, 0)
            if account.kind == AccountKind.RESIDENT
            else 0
        )
        if account.lifetime_g != earned:
            out.append(
                Violation(
                    "lifetime_earned",
                    f"{account} lifetime_g is {account.lifetime_g}, transfers say {earned}",
                )
            )
        if account.debits_must_not_exceed_credits and account.available_g < 0:
            out.append(Violation("non_negative", f"{account} available {account.available_g}"))

    lot_remaining = {
        row["account"]: row["s"]
        for row in Lot.objects.values("account").annotate(s=Sum("remaining_g")).order_by()
    }
    for account in Account.objects.residents().only(
        "id", "kind", "user_id", "debits_posted", "credits_posted", "debits_pending"
    ):
        if lot_remaining.get(account.pk, 0) != account.available_g:
            out.append(
                Violation(
                    "lots_sum_to_balance",
                    f"{account} lots hold {lot_remaining.get(account.pk, 0)}, available {account.available_g}",
                )
            )

    allocated: dict[int, int] = defaultdict(int)
    for row in LotAllocation.objects.values("lot").annotate(s=Sum("amount_g")).order_by():
        allocated[row["lot"]] = row["s"]
    for lot in Lot.objects.only("id", "amount_g", "remaining_g").iterator(chunk_size=5000):
        if lot.amount_g - allocated.get(lot.pk, 0) != lot.remaining_g:
            out.append(
                Violation(
                    "lot_allocations",
                    f"lot {lot.pk}: {lot.amount_g} - allocated {allocated.get(lot.pk, 0)} != remaining {lot.remaining_g}",
                )
            )

    overdue = open_pending.filter(timeout_at__lte=now)
    for transfer in overdue.only("id", "timeout_at")[:100]:
        out.append(
            Violation(
                "pending_past_timeout", f"transfer {transfer.pk} timed out at {transfer.timeout_at}"
            )
        )

    bad_resolutions = Transfer.objects.filter(
        Q(flag__in=[TransferFlag.POST_PENDING, TransferFlag.VOID_PENDING])
        & ~Q(pending__flag=TransferFlag.PENDING)
    )
    for transfer in bad_resolutions.only("id")[:100]:
        out.append(Violation("resolution_of_non_pending", f"transfer {transfer.pk}"))
    return out
