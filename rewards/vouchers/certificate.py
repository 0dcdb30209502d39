"""A donation's certificate: a PNG drawn with Pillow (the donor's name, the grams, the project
and the date). Names and projects are often Chinese, so a CJK font is used when the machine
has one (fonts-noto-cjk, installed by scripts/bootstrap.sh), found at runtime; without one,
DejaVu or Pillow's own font draws what it can."""

from __future__ import annotations

import functools
import io
from datetime import date
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

#: Tried in order; the first that exists is used.
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
SIZE = (1200, 800)
#: The certificates' colours: the frame and titles, the text, the small print.
GREEN, INK, GREY = (34, 110, 60), (40, 40, 40), (90, 90, 90)


def certificate_font_path() -> str | None:
    return next((p for p in FONT_CANDIDATES if Path(p).is_file()), None)


@functools.lru_cache(maxsize=8)
def certificate_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The certificates' font at `size` (CJK when the machine has one): this one's and the
    pool's retirement certificate. Loading the CJK collection takes tens of milliseconds:
    once per size and process."""
    path = certificate_font_path()
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size=size)


#: One centred line of a certificate: (top in pixels, text, font size, colour).
Line = tuple[int, str, int, tuple[int, int, int]]


def certificate_png(*, background: tuple[int, int, int], lines: list[Line]) -> bytes:
    """A certificate as PNG bytes: the green frame and each line centred. The donation's
    certificate and the pool's retirement certificate are drawn by it."""
    img = Image.new("RGB", SIZE, background)
    draw = ImageDraw.Draw(img)
    width, height = SIZE
    draw.rectangle((24, 24, width - 24, height - 24), outline=GREEN, width=6)
    for y, text, size, fill in lines:
        font = certificate_font(size)
        left, _, right, _ = draw.textbbox((0, 0), text, font=font)
        draw.text(((width - (right - left)) / 2, y), text, font=font, fill=fill)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


def certificate_render(*, name: str, grams: int, project: str, on: date) -> bytes:
    """The certificate as PNG bytes, in both languages."""
    return certificate_png(
        background=(250, 248, 240),
        lines=[
            (90, "捐赠证书 · Certificate of Donation", 52, GREEN),
            (230, name or "—", 64, INK),
            (360, f"捐出 {grams:,} 克碳积分 · donated {grams:,} g of carbon points", 36, INK),
            (440, f"支持项目 · to {project}"[:80], 36, INK),
            (600, on.isoformat(), 32, GREY),
        ],
    )
