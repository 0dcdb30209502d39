"""A retirement certificate: a PNG drawn with Pillow (the buyer, the tonnes, the pool, the
certificate number and the date), drawn as the vouchers' certificates are (their fonts,
CJK when the machine has them, and frame)."""

from __future__ import annotations

from datetime import date

from rewards.vouchers.certificate import GREEN, GREY, INK, certificate_png


def retirement_certificate_render(
    *, buyer: str, tonnes: int, pool: str, number: str, on: date
) -> bytes:
    return certificate_png(
        background=(248, 250, 246),
        lines=[
            (90, "减排量注销证书 · Retirement Certificate", 50, GREEN),
            (220, buyer or "—", 60, INK),
            (350, f"注销 {tonnes:,} 吨二氧化碳当量 · retired {tonnes:,} t CO2e", 36, INK),
            (430, f"来源 · from {pool}"[:80], 34, INK),
            (560, f"No. {number}", 32, GREY),
            (620, on.isoformat(), 30, GREY),
        ],
    )
