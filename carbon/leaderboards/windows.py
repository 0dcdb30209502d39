"""Time windows of a board and the buckets scores are kept in, in the city's TIME_ZONE.

A score is kept per bucket: `all` (all time), `w:2026-W49` (an ISO week), `m:2026-12` (a
month), `d:2026-12-03` (a day, kept only as long as a rolling window needs it), and the two
rolling sums `r7` and `r30`. A rolling sum holds the days from its start marker to today;
the roll-over job moves the marker forward and subtracts the days that left the window.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Window(StrEnum):
    ALL = "all"
    WEEK = "week"
    MONTH = "month"
    ROLLING_7 = "7d"
    ROLLING_30 = "30d"

    @property
    def label(self):
        return WINDOW_LABELS[self]

    @property
    def rolling_days(self) -> int | None:
        return {Window.ROLLING_7: 7, Window.ROLLING_30: 30}.get(self)


WINDOW_LABELS = {
    Window.ALL: _("All time."),
    Window.WEEK: _("This calendar week, Monday 00:00 to Sunday 24:00, city time."),
    Window.MONTH: _("This calendar month, city time."),
    Window.ROLLING_7: _("The last 7 days: today and the 6 days before it, city time."),
    Window.ROLLING_30: _("The last 30 days: today and the 29 days before it, city time."),
}

ROLLING_BUCKETS = {Window.ROLLING_7: "r7", Window.ROLLING_30: "r30"}
#: Day buckets older than the longest rolling window are dropped by the roll-over.
LONGEST_ROLLING_DAYS = 30


def city_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def local_date(at: datetime | None = None) -> date:
    return timezone.localtime(at or timezone.now(), city_zone()).date()


def week_bucket(day: date) -> str:
    year, week, _weekday = day.isocalendar()
    return f"w:{year}-W{week:02d}"


def month_bucket(day: date) -> str:
    return f"m:{day.year}-{day.month:02d}"


def day_bucket(day: date) -> str:
    return f"d:{day.isoformat()}"


def rolling_start(window: Window, today: date) -> date:
    return today - timedelta(days=window.rolling_days - 1)


def buckets_for_event(day: date) -> list[str]:
    """The fixed buckets an event of `day` adds to (rolling sums are decided by the backend
    against their start markers, atomically with the write)."""
    return ["all", week_bucket(day), month_bucket(day), day_bucket(day)]


def bucket_for_window(window: Window, today: date) -> str:
    """Where a board of `window` reads its current scores."""
    if window == Window.ALL:
        return "all"
    if window == Window.WEEK:
        return week_bucket(today)
    if window == Window.MONTH:
        return month_bucket(today)
    return ROLLING_BUCKETS[window]
