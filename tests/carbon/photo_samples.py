"""Real images for the photo tests, made with Pillow: varied content (so perceptual hashes
differ between seeds), EXIF capture time and GPS, every accepted format, and bad input;
plus the upload helper the photo tests share."""

from __future__ import annotations

import dataclasses
import io
import random
import struct
import zlib
from datetime import datetime, timedelta

import pillow_heif
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import ExifTags, Image, ImageDraw

from carbon.adapters.photo import images, storage
from carbon.models import Claim, ClaimStatus
from tests.carbon.api_helpers import new_key

pillow_heif.register_heif_opener()

# Wuhan, near the Yellow Crane Tower.
LAT, LON = 30.5447, 114.3025


def picture(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A busy, seeded picture: a gradient and random shapes."""
    rnd = random.Random(seed)
    w, h = size
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x0, y0 = rnd.randrange(w), rnd.randrange(h)
        x1, y1 = x0 + rnd.randrange(w // 8, w // 2), y0 + rnd.randrange(h // 8, h // 2)
        colour = tuple(rnd.randrange(256) for _ in range(3))
        if rnd.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    return img


def exif_for(
    taken_at: datetime | None = None,
    *,
    offset: str | None = "auto",
    gps: tuple[float, float] | None = None,
    orientation: int | None = None,
) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestPhone"
    exif[ExifTags.Base.Model] = "Model 1"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if taken_at is not None:
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
        if offset == "auto":
            local = timezone.localtime(taken_at)
            ifd[ExifTags.Base.DateTimeOriginal] = local.strftime("%Y:%m:%d %H:%M:%S")
            ifd[ExifTags.Base.OffsetTimeOriginal] = (
                local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]
            )
        else:
            ifd[ExifTags.Base.DateTimeOriginal] = taken_at.strftime("%Y:%m:%d %H:%M:%S")
            if offset is not None:
                ifd[ExifTags.Base.OffsetTimeOriginal] = offset
    if gps is not None:
        lat, lon = gps
        g = exif.get_ifd(ExifTags.IFD.GPSInfo)
        g[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
        g[ExifTags.GPS.GPSLatitude] = _dms(abs(lat))
        g[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
        g[ExifTags.GPS.GPSLongitude] = _dms(abs(lon))
    return exif


def _dms(value: float) -> tuple[float, float, float]:
    d = int(value)
    m = int((value - d) * 60)
    s = round((value - d - m / 60) * 3600, 4)
    return (float(d), float(m), s)


def encode(img: Image.Image, fmt: str = "JPEG", exif: Image.Exif | None = None, **kw) -> bytes:
    out = io.BytesIO()
    if exif is not None:
        kw["exif"] = exif
    if fmt == "JPEG":
        kw.setdefault("quality", 90)
    if fmt == "MPO":
        kw.update(save_all=True, append_images=[img.resize((img.width // 4, img.height // 4))])
    img.save(out, fmt, **kw)
    return out.getvalue()


def photo_bytes(
    seed: int = 1,
    fmt: str = "JPEG",
    *,
    taken_at: datetime | None = None,
    gps: tuple[float, float] | None = (LAT, LON),
    size=(800, 600),
    **exif_kw,
) -> bytes:
    """A photo as a phone would send it: EXIF capture time (default: an hour ago) and GPS."""
    taken_at = taken_at or timezone.now() - timedelta(hours=1)
    return encode(picture(seed, size), fmt, exif_for(taken_at, gps=gps, **exif_kw))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a token of data: a decompression bomb
    as far as a careless decoder is concerned."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def upload(
    client,
    data: bytes,
    *,
    name="photo.jpg",
    content_type="image/jpeg",
    quantity=2,
    key: str | None = None,
    behaviour="own-bag",
    **fields,
):
    payload = {
        "behaviour": behaviour,
        "quantity": quantity,
        "idempotency_key": key or new_key(),
        "photo": SimpleUploadedFile(name, data, content_type=content_type),
        **fields,
    }
    return client.post("/api/v1/claims", payload, format="multipart")


def stored_photo_with_hash(user, behaviour, phash: int) -> Claim:
    """An earlier (refused) claim whose photo has the given hash; its picture doesn't matter."""
    claim = Claim.objects.create(
        user=user,
        behaviour=behaviour,
        quantity=1,
        occurred_at=timezone.now(),
        evidence_type="photo",
        idempotency_key=new_key(),
        request_hash="-",
        status=ClaimStatus.REJECTED,
    )
    inspected = images.photo_inspect(data=photo_bytes(99))
    storage.photo_store(
        claim=claim,
        inspected=dataclasses.replace(inspected, phash=phash, sha256="0" * 64, stored_files=[]),
    )
    return claim
