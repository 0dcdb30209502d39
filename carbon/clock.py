"""Time rules shared by every part of the core: how far a client's clock may run ahead, and
the city-local day and month that caps count in."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

# A phone clock may run a little ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)


def day_bounds(when: datetime) -> tuple[datetime, datetime]:
    """The city-local day around `when`, as [start, end)."""
    local = timezone.localtime(when)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def month_bounds(when: datetime) -> tuple[datetime, datetime]:
    """The city-local month around `when`, as [start, end)."""
    local = timezone.localtime(when)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start + timedelta(days=32)).replace(day=1)
