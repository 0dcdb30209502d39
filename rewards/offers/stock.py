"""An offer's stock: taken and given back one unit at a time by conditional UPDATEs (the
database decides, so concurrent redemptions never sell more than there is), and adjusted by
an administrator with a reason."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from carbon.models import User
from rewards.offers.errors import InvalidStockChange, OfferNotFound
from rewards.offers.models import Offer, StockAdjustment


def offer_stock_take(*, offer_id: int) -> bool:
    """Take one unit; False when none is left. Holds the offer's row lock until the caller's
    transaction ends, so callers take it last."""
    return bool(
        Offer.objects.filter(pk=offer_id, stock_left__gt=0).update(stock_left=F("stock_left") - 1)
    )


def offer_stock_return(*, offer_id: int) -> None:
    """Give one unit back (a cancelled voucher). Never above the total: an administrator may
    have withdrawn stock meanwhile."""
    Offer.objects.filter(pk=offer_id, stock_left__lt=F("stock_total")).update(
        stock_left=F("stock_left") + 1
    )


@transaction.atomic
def offer_stock_adjust(*, offer_id: int, delta: int, reason: str, actor: User | None) -> Offer:
    """Add units (delta > 0) or withdraw unsold ones (delta < 0); the total moves with them.
    Issued vouchers are never taken back: withdrawing more than is left is refused."""
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise InvalidStockChange(details={"delta": delta})
    reason = reason.strip()
    if not reason:
        raise InvalidStockChange(details={"reason": "required"})
    changed = Offer.objects.filter(pk=offer_id, stock_left__gte=-delta).update(
        stock_left=F("stock_left") + delta, stock_total=F("stock_total") + delta
    )
    if not changed:
        if not Offer.objects.filter(pk=offer_id).exists():
            raise OfferNotFound(details={"offer": offer_id})
        raise InvalidStockChange(details={"delta": delta})
    StockAdjustment.objects.create(offer_id=offer_id, delta=delta, reason=reason[:300], actor=actor)
    return Offer.objects.get(pk=offer_id)
