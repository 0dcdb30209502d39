"""The memory one photo upload may take (README "Photo memory"): the worst accepted upload in
each format, at the largest pixel count the settings accept, measured as the peak resident
size of a fresh process (Pillow's and the codecs' buffers are C memory that tracemalloc
does not see). Also the per-process cap on uploads decoded at once."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image, ImageDraw

from carbon.adapters.photo import images
from carbon.errors import ErrorCode
from tests.carbon.api_helpers import assert_error
from tests.carbon.photo_samples import photo_bytes, upload

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024

# Run in a fresh interpreter: the baseline is taken once Django and Pillow are imported and
# the upload's bytes are read, so the difference in peak RSS is the inspection's own.
PROBE = """
import json, os, resource, sys
import django
django.setup()
from carbon.adapters.photo import images
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
inspected = images.photo_inspect(data=data)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"format": inspected.original_format, "size": [inspected.width,
      inspected.height], "peak_kib": after - before}))
"""


def worst_case(fmt: str, side: int) -> bytes:
    """A side x side picture in the format's costliest accepted flavour; smooth, so it stays
    far under the byte limit."""
    img = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for i in range(12):
        x, y = (i * 997) % side, (i * 1499) % side
        draw.rectangle((x, y, x + side // 6, y + side // 6), fill=(40 * (i % 6), 90, 200 - i))
    out = io.BytesIO()
    if fmt == "JPEG":  # progressive CMYK: libjpeg keeps every component's coefficients
        img.convert("CMYK").save(out, "JPEG", quality=80, progressive=True)
    elif fmt == "PNG":  # RGBA: the widest full-size copy
        img.convert("RGBA").save(out, "PNG", compress_level=1)
    elif fmt == "WEBP":
        img.convert("RGBA").save(out, "WEBP", quality=50, method=0)
    else:
        img.convert("RGBA").save(out, "HEIF", quality=10, enc_params={"preset": "ultrafast"})
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_the_largest_accepted_upload_stays_under_the_stated_memory_bound(fmt, tmp_path):
    side = math.isqrt(settings.PHOTO_MAX_PIXELS)
    data = worst_case(fmt, side)
    assert len(data) <= settings.PHOTO_MAX_BYTES
    path = tmp_path / f"worst.{fmt.lower()}"
    path.write_bytes(data)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "CARBON_LOCAL": "1"}

    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stderr[-2000:]
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    assert measured["format"] == fmt and measured["size"] == [side, side]
    peak = measured["peak_kib"] * 1024
    bound = images.photo_memory_bound(max_pixels=settings.PHOTO_MAX_PIXELS, fmt=fmt)
    assert peak <= bound, f"{fmt}: {peak / MB:.0f} MB measured, {bound / MB:.0f} MB stated"
    # Far below the decoded size times the copies the pipeline used to make (4 and more).
    assert bound <= images.photo_memory_bound(max_pixels=settings.PHOTO_MAX_PIXELS)


def test_the_bound_the_readme_states_is_the_codes():
    readme = (ROOT / "README.md").read_text()
    bound = images.photo_memory_bound(max_pixels=40_000_000)
    assert f"{round(bound / MB)} MB" in readme


@pytest.mark.django_db
def test_an_upload_that_waits_too_long_for_a_decoding_slot_gets_a_503(auth_api, own_bag, settings):
    settings.PHOTO_INSPECT_CONCURRENCY = 1
    settings.PHOTO_INSPECT_WAIT_SECONDS = 0.2
    held, release = threading.Event(), threading.Event()

    def hold_the_slot():
        with images.photo_work_slot():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_slot)
    holder.start()
    try:
        assert held.wait(5)
        response = upload(auth_api, photo_bytes(61))
    finally:
        release.set()
        holder.join(10)

    assert_error(response, 503, ErrorCode.PHOTO_WORK_BUSY)
    assert response.json()["error"]["details"] == {"retry_after_seconds": 1}
    # Once the slot is free, the same upload goes through.
    assert upload(auth_api, photo_bytes(61)).status_code == 201
