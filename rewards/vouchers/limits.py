"""Per-resident limits of an offer (per day, per month, lifetime; days and months in the
city's time zone), counted from the resident's vouchers. Cancelled and failed vouchers gave
everything back, so they count towards nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from carbon.models import User
from rewards.offers.models import Offer
from rewards.vouchers.models import NOT_COUNTED, Voucher


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """The start of today and of this month in the city's time zone (settings.TIME_ZONE)."""
    local = timezone.localtime(now)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


@dataclass(frozen=True)
class Usage:
    day: int
    month: int
    lifetime: int


def _remaining(offer: Offer, usage: Usage) -> tuple[int | None, str | None]:
    """What is left under the tightest limit, and which limit that is (None: no limit)."""
    left: list[tuple[int, str]] = [
        (limit - used, period)
        for limit, used, period in (
            (offer.limit_per_day, usage.day, "day"),
            (offer.limit_per_month, usage.month, "month"),
            (offer.limit_lifetime, usage.lifetime, "lifetime"),
        )
        if limit is not None
    ]
    if not left:
        return None, None
    remaining, period = min(left)
    return max(0, remaining), period


def offer_usage(*, user: User, offer: Offer, now: datetime) -> Usage:
    day, month = period_starts(now)
    counts = (
        Voucher.objects.filter(user=user, offer=offer)
        .counted_for_limits()
        .aggregate(
            day=Count("pk", filter=Q(created_at__gte=day)),
            month=Count("pk", filter=Q(created_at__gte=month)),
            lifetime=Count("pk"),
        )
    )
    return Usage(**counts)


def offer_remaining(*, user: User, offer: Offer, now: datetime) -> tuple[int | None, str | None]:
    if (
        offer.limit_per_day is None
        and offer.limit_per_month is None
        and offer.limit_lifetime is None
    ):
        return None, None  # nothing to count: spare the redemption a query
    return _remaining(offer, offer_usage(user=user, offer=offer, now=now))


def offers_with_usage(*, user: User, offers: QuerySet[Offer], now: datetime) -> QuerySet[Offer]:
    """The offers annotated with the resident's usage (used_day, used_month, used_lifetime),
    in one query."""
    day, month = period_starts(now)
    mine = Q(vouchers__user=user) & ~Q(vouchers__status__in=NOT_COUNTED)
    return offers.annotate(
        used_day=Count("vouchers", filter=mine & Q(vouchers__created_at__gte=day)),
        used_month=Count("vouchers", filter=mine & Q(vouchers__created_at__gte=month)),
        used_lifetime=Count("vouchers", filter=mine),
    )


def remaining_of_annotated(offer: Offer) -> int | None:
    usage = Usage(offer.used_day, offer.used_month, offer.used_lifetime)
    return _remaining(offer, usage)[0]
