"""Settling merchants. `payout_account_connect` creates a merchant's Stripe connected account
(through the outbox); `settlements_run` makes, for a period, one Settlement per merchant with
what is owed and not yet in a settlement, claiming its redemption lines and queueing one
Transfer, all in one transaction; the transfer's answer (or its `transfer.created` webhook,
whichever comes first) marks the settlement paid and its lines settled, once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from carbon.models import Partner
from rewards.merchants.models import MerchantRedemption
from rewards.merchants.redemptions import merchant_redemptions_settle
from rewards.payments.models import StripeRequest
from rewards.payments.outbox import Outcome, owner_of, stripe_request_enqueue
from rewards.settlements.errors import NoPayoutAccount
from rewards.settlements.models import PayoutAccount, Settlement, SettlementLine, SettlementStatus

log = logging.getLogger(__name__)


@transaction.atomic
def payout_account_connect(*, merchant: Partner, email: str = "") -> PayoutAccount:
    """Ask Stripe for the merchant's connected account (once; asking again returns it)."""
    account, _ = PayoutAccount.objects.get_or_create(merchant=merchant)
    params: dict[str, Any] = {
        "type": "custom",
        "country": "CN",
        "metadata": {"carbon_merchant": str(merchant.pk)},
    }
    if email:
        params["email"] = email
    stripe_request_enqueue(
        operation="account.create", owner=owner_of(kind="account", pk=account.pk), params=params
    )
    return account


def _account_created(request: StripeRequest, outcome: Outcome) -> None:
    account = PayoutAccount.objects.select_for_update().get(pk=int(request.owner.split(":")[1]))
    if outcome.ok:
        account.stripe_account_id = (outcome.data or {}).get("id")
        account.last_error = ""
    else:
        account.last_error = outcome.error[:500]
    account.save()


def _fen(value: Decimal) -> int:
    return int((value * 100).to_integral_value())


@dataclass
class SettlementRun:
    created: list[Settlement] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # merchant id -> why


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(end, time.min), tz),
    )


def settlements_run(*, period_start: date, period_end: date) -> SettlementRun:
    """Settle every merchant for [period_start, period_end): what it is owed for redemptions
    before period_end that no settlement has claimed yet. Running it again for the same
    period adds nothing (one settlement per merchant per period)."""
    if period_end <= period_start:
        raise ValueError("a period ends after it starts")
    _, until = _bounds(period_start, period_end)
    run = SettlementRun()
    merchant_ids = (
        MerchantRedemption.objects.filter(
            settled_at__isnull=True, settlement_line__isnull=True, created_at__lt=until
        )
        .values_list("merchant_id", flat=True)
        .distinct()
    )
    for merchant_id in sorted(set(merchant_ids)):
        try:
            settlement = settlement_create(
                merchant=Partner.objects.get(pk=merchant_id),
                period_start=period_start,
                period_end=period_end,
            )
        except NoPayoutAccount:
            run.skipped[merchant_id] = "no connected account"
            continue
        if settlement is not None:
            run.created.append(settlement)
    return run


@transaction.atomic
def settlement_create(
    *, merchant: Partner, period_start: date, period_end: date
) -> Settlement | None:
    account = PayoutAccount.objects.filter(merchant=merchant).first()
    if account is None or not account.stripe_account_id:
        raise NoPayoutAccount(details={"merchant": merchant.pk})
    existing = Settlement.objects.filter(merchant=merchant, period_start=period_start).first()
    if existing is not None:
        return None
    _, until = _bounds(period_start, period_end)
    lines = list(
        MerchantRedemption.objects.select_for_update(of=("self",))
        .filter(
            Q(merchant=merchant, settled_at__isnull=True, created_at__lt=until),
            settlement_line__isnull=True,
        )
        .order_by("pk")
    )
    total = sum(_fen(line.value_cny) for line in lines)
    if total <= 0:
        return None
    settlement = Settlement.objects.create(
        merchant=merchant, period_start=period_start, period_end=period_end, amount_fen=total
    )
    SettlementLine.objects.bulk_create(
        SettlementLine(settlement=settlement, redemption=line, value_fen=_fen(line.value_cny))
        for line in lines
    )
    stripe_request_enqueue(
        operation="transfer.create",
        owner=owner_of(kind="settlement", pk=settlement.pk),
        params={
            "amount": total,
            "currency": settings.STRIPE_CURRENCY,
            "destination": account.stripe_account_id,
            "transfer_group": f"settlement-{settlement.pk}",
            "metadata": {"carbon_settlement": str(settlement.pk)},
        },
    )
    return settlement


def _paid(settlement: Settlement, transfer_id: str) -> str:
    if settlement.status == SettlementStatus.PAID:
        return "already paid"
    settlement.status = SettlementStatus.PAID
    settlement.transfer_id = transfer_id
    settlement.paid_at = timezone.now()
    settlement.last_error = ""
    settlement.save()
    ids = list(settlement.lines.values_list("redemption_id", flat=True))
    merchant_redemptions_settle(redemption_ids=ids, at=settlement.paid_at)
    return "paid"


def _transfer_created(request: StripeRequest, outcome: Outcome) -> None:
    settlement = Settlement.objects.select_for_update().get(pk=int(request.owner.split(":")[1]))
    if outcome.ok:
        _paid(settlement, str((outcome.data or {}).get("id")))
        return
    if settlement.status == SettlementStatus.SENDING:
        # Refused by Stripe: the lines are released, to be settled in a later period.
        settlement.status = SettlementStatus.FAILED
        settlement.last_error = outcome.error[:500]
        settlement.save()
        settlement.lines.all().delete()


def settlement_transfer_event(type_: str, obj: dict[str, Any]) -> str:
    """A transfer.* webhook (inside its transaction): a transfer.created that overtakes the
    worker's answer pays the settlement; the answer then finds it paid."""
    ours = (obj.get("metadata") or {}).get("carbon_settlement")
    if type_ != "transfer.created" or not str(ours or "").isdigit():
        return "ignored"
    settlement = Settlement.objects.select_for_update().filter(pk=int(ours)).first()
    if settlement is None or obj.get("amount") != settlement.amount_fen:
        return "unknown or different transfer"
    if settlement.status == SettlementStatus.FAILED:
        log.error("settlement %s: Stripe made transfer %s after we failed it", ours, obj.get("id"))
        return "transfer for a failed settlement: see payments_reconcile"
    return _paid(settlement, str(obj.get("id")))


def settlements_last_month(*, today: date | None = None) -> SettlementRun:
    today = today or timezone.localdate()
    end = today.replace(day=1)
    start = (end.replace(day=1) - timedelta(days=1)).replace(day=1)
    return settlements_run(period_start=start, period_end=end)


def settlements_handlers():
    return {"account": _account_created, "settlement": _transfer_created}
