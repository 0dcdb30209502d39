"""Public figures of the cells: counts by district and by kind (certified, in notice), and
kilograms of waste avoided over the last twelve months (indicators that count as such)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from carbon.models import District
from zerowaste.cells.models import Achievement, Cell, CellKind, CellStatus


def twelve_months_from(now: datetime) -> date:
    today = timezone.localdate(now)
    year, month = today.year - 1, today.month + 1
    if month == 13:
        year, month = year + 1, 1
    return date(year, month, 1)


def _kg(value: Decimal | None) -> int:
    return int((value or Decimal(0)).to_integral_value())


def cells_stats(*, now: datetime | None = None) -> dict[str, Any]:
    since = twelve_months_from(now or timezone.now())
    public = Cell.objects.public()
    counts = {
        "certified": Count("id", filter=Q(status=CellStatus.CERTIFIED)),
        "in_notice": Count("id", filter=Q(status=CellStatus.IN_NOTICE)),
    }
    avoided = Achievement.objects.filter(
        cell__in=public, indicator__counts_as_kg_avoided=True, month__gte=since
    )
    kg_by_district = dict(
        avoided.values("cell__district_id")
        .annotate(kg=Sum("value"))
        .values_list("cell__district_id", "kg")
    )
    kg_by_kind = dict(
        avoided.values("cell__kind").annotate(kg=Sum("value")).values_list("cell__kind", "kg")
    )
    by_district = {
        row["district_id"]: row for row in public.values("district_id").annotate(**counts)
    }
    by_kind = {row["kind"]: row for row in public.values("kind").annotate(**counts)}
    totals = public.aggregate(**counts)
    return {
        "since": since.isoformat(),
        "totals": {
            "certified": totals["certified"],
            "in_notice": totals["in_notice"],
            "kg_avoided": _kg(avoided.aggregate(kg=Sum("value"))["kg"]),
        },
        "by_district": [
            {
                "district": d.code,
                "name": d.name,
                "certified": by_district.get(d.pk, {}).get("certified", 0),
                "in_notice": by_district.get(d.pk, {}).get("in_notice", 0),
                "kg_avoided": _kg(kg_by_district.get(d.pk)),
            }
            for d in District.objects.order_by("code")
        ],
        "by_kind": [
            {
                "kind": kind.value,
                "label": str(kind.label),
                "certified": by_kind.get(kind.value, {}).get("certified", 0),
                "in_notice": by_kind.get(kind.value, {}).get("in_notice", 0),
                "kg_avoided": _kg(kg_by_kind.get(kind.value)),
            }
            for kind in CellKind
        ],
    }
