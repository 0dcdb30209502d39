"""A retirement certificate: a PNG drawn with Pillow (the buyer, the tonnes, the pool, the
certificate number and the date), reusing the vouchers' certificate fonts (CJK when the
machine has them)."""

from __future__ import annotations

import io
from datetime import date

from PIL import Image, ImageDraw

from rewards.vouchers.certificate import certificate_font

SIZE = (1200, 800)
_GREEN = (34, 110, 60)


def retirement_certificate_render(
    *, buyer: str, tonnes: int, pool: str, number: str, on: date
) -> bytes:
    img = Image.new("RGB", SIZE, (248, 250, 246))
    draw = ImageDraw.Draw(img)
    width, height = SIZE
    draw.rectangle((24, 24, width - 24, height - 24), outline=_GREEN, width=6)

    def centred(y: int, text: str, size: int, fill=(40, 40, 40)) -> None:
        font = certificate_font(size)
        left, _, right, _ = draw.textbbox((0, 0), text, font=font)
        draw.text(((width - (right - left)) / 2, y), text, font=font, fill=fill)

    centred(90, "减排量注销证书 · Retirement Certificate", 50, _GREEN)
    centred(220, buyer or "—", 60)
    centred(350, f"注销 {tonnes:,} 吨二氧化碳当量 · retired {tonnes:,} t CO2e", 36)
    centred(430, f"来源 · from {pool}"[:80], 34)
    centred(560, f"No. {number}", 32, (90, 90, 90))
    centred(620, on.isoformat(), 30, (90, 90, 90))
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()
