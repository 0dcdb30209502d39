"""Charts of a cell's monthly achievements drawn on the server as SVG: the admin and the
public notice board show them with no script (the CSP allows none inline) and no library."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 28


def _f(value: float) -> str:
    return f"{value:.1f}"


def _nice(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def achievement_chart_svg(
    *, title: str, unit: str, points: Sequence[tuple[date, Decimal]]
) -> SafeString:
    """One indicator's monthly values as a line chart (an empty frame when there are none)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [float(v) for _, v in points]
    low = min(values + [0.0])
    high = max(values + [1.0])
    if high == low:
        high = low + 1
    step = plot_w / max(len(points) - 1, 1)

    def x(i: int) -> float:
        return LEFT + i * step

    def y(v: float) -> float:
        return TOP + plot_h - (v - low) / (high - low) * plot_h

    grid = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="grid"/>'
        '<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>',
        (
            (LEFT, _f(y(v)), WIDTH - RIGHT, _f(y(v)), LEFT - 4, _f(y(v) + 4), _nice(v))
            for v in (low, (low + high) / 2, high)
        ),
    )
    months = format_html_join(
        "",
        '<text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>',
        ((_f(x(i)), HEIGHT - 8, f"{m:%y-%m}") for i, (m, _) in enumerate(points)),
    )
    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="3"><title>{}: {} {}</title></circle>',
        (
            (_f(x(i)), _f(y(v)), f"{m:%Y-%m}", _nice(v), unit)
            for i, ((m, _), v) in enumerate(zip(points, values, strict=True))
        ),
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="zw-chart" role="img" viewBox="0 0 {} {}" '
        'width="{}" height="{}" aria-label="{}">'
        "<style>.grid{{stroke:#ddd}}.tick{{font:11px sans-serif;fill:#555}}"
        ".ttl{{font:bold 13px sans-serif;fill:#222}}polyline{{fill:none;stroke:#2e7d32;"
        "stroke-width:2}}circle{{fill:#2e7d32}}</style>"
        '<text x="{}" y="16" class="ttl">{} ({})</text>{}{}<polyline points="{}"/>{}</svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        title,
        LEFT,
        title,
        unit,
        grid,
        months,
        line,
        dots,
    )
