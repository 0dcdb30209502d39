"""The image pipeline, with no database: an upload's format sniffed from its content, size and
pixel limits, a reduced decode, the EXIF capture time and GPS kept as private facts, the
re-encoded copy and thumbnail without any metadata, and the perceptual hash. Claim photos
use it; sightings and cell evidence are to reuse it."""

from __future__ import annotations

import hashlib
import io
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any
from zoneinfo import ZoneInfo

import imagehash
from django.conf import settings
from django.contrib.gis.geos import Point
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from carbon.clock import CLOCK_SKEW
from carbon.errors import ErrorCode, EvidenceNotAccepted

log = logging.getLogger(__name__)

# HEIC straight from iPhones; registering adds the "HEIF" format to Pillow.
register_heif_opener()

#: Formats we accept, as Pillow names them after reading the content (never the file name).
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
# Most phone cameras write JPEGs with a multi-picture extension, which Pillow calls MPO.
_FORMAT_ALIASES = {"MPO": "JPEG"}
#: The stored image's long side, the thumbnail's, and the JPEG quality of both.
MAX_SIDE = 2048
THUMBNAIL_SIDE = 320
JPEG_QUALITY = 85
# A JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg does it in the DCT, far cheaper than
# decoding in full and resampling) as long as the long side stays at least this: a 12 MP
# phone photo decodes straight to 2016x1512.
DRAFT_MIN_SIDE = 1600
#: Hashes this close (in bits of 64) are the same picture: refused outright. Between this
#: and settings.PHOTO_DUPLICATE_DISTANCE a reviewer decides.

_SRGB = ImageCms.createProfile("sRGB")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


class PhotoTooLarge(EvidenceNotAccepted):
    code = ErrorCode.PHOTO_TOO_LARGE


class NotAnImage(EvidenceNotAccepted):
    code = ErrorCode.NOT_AN_IMAGE


class ImageTooLarge(EvidenceNotAccepted):
    code = ErrorCode.IMAGE_TOO_LARGE


class CaptureTimeInFuture(EvidenceNotAccepted):
    code = ErrorCode.CAPTURE_TIME_IN_FUTURE


@dataclass
class InspectedPhoto:
    """What an upload turned out to be. `image_jpeg` and `thumbnail_jpeg` are what we keep
    and serve: re-encoded, without EXIF, ICC, XMP or comments."""

    sha256: str
    phash: int
    original_format: str
    original_bytes: int
    width: int
    height: int
    taken_at: datetime | None
    gps: Point | None
    exif: dict[str, Any]
    image_jpeg: bytes
    thumbnail_jpeg: bytes
    # Storage names written for this photo, so a failed transaction can remove them.
    stored_files: list[str] = field(default_factory=list)

    @property
    def phash_hex(self) -> str:
        return f"{self.phash:016x}"

    def evidence(self) -> dict[str, Any]:
        """The claim's evidence JSON: shown to the resident, so no GPS and no raw EXIF."""
        return {
            "sha256": self.sha256,
            "phash": self.phash_hex,
            "format": self.original_format,
            "width": self.width,
            "height": self.height,
            "bytes": self.original_bytes,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
        }


# --- inspecting an upload ---------------------------------------------------------------


def photo_size_check(*, size: int) -> None:
    if size > settings.PHOTO_MAX_BYTES:
        raise PhotoTooLarge(
            _("A photo may be at most %(megabytes)s MB.")
            % {"megabytes": f"{settings.PHOTO_MAX_BYTES / (1024 * 1024):g}"},
            details={"max_bytes": settings.PHOTO_MAX_BYTES, "bytes": size},
        )


def photo_open(*, data: bytes) -> Image.Image:
    """Identify the image from its bytes and check its pixel count. Reads the header only:
    no pixel is decoded before the size is known to be acceptable."""
    photo_size_check(size=len(data))
    try:
        # `formats` limits which decoders even look at the bytes: a GIF, a TIFF or an HTML
        # page called photo.jpg is refused here, whatever its name or declared type.
        img = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError:
        raise _too_many_pixels(None) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _not_an_image() from None
    if _format(img) not in ACCEPTED_FORMATS:  # belt and braces: a plugin that reports oddly
        raise _not_an_image()
    width, height = img.size
    # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse from the lower.
    limit = min(settings.PHOTO_MAX_PIXELS, Image.MAX_IMAGE_PIXELS or settings.PHOTO_MAX_PIXELS)
    if width <= 0 or height <= 0:
        raise _not_an_image()
    if width * height > limit:
        raise _too_many_pixels((width, height))
    return img


def photo_metadata(
    *, img: Image.Image, now: datetime
) -> tuple[datetime | None, Point | None, dict[str, Any]]:
    """Capture time, GPS position and a small private EXIF summary. A capture time in the
    future (beyond clock skew) is refused; unreadable metadata counts as none."""
    try:
        exif = img.getexif()
        taken_at = _capture_time(exif)
        gps = _gps_point(exif)
        summary = _exif_summary(exif, taken_at, gps)
    except Exception:  # hostile metadata can break any parser: treat it as absent
        log.info("unreadable EXIF in an uploaded photo", exc_info=True)
        taken_at, gps, summary = None, None, {"unreadable": True}
    if taken_at is not None and taken_at > now + CLOCK_SKEW:
        raise CaptureTimeInFuture(
            _("The photo's capture time is in the future; check the phone's clock."),
            details={"taken_at": taken_at.isoformat()},
        )
    return taken_at, gps, summary


def photo_load(*, img: Image.Image) -> None:
    """Decode the pixels (large JPEGs at a reduced scale), refusing corrupt data. Runs before
    the metadata is read: for some formats reading EXIF decodes the image, and a failure
    there must not pass as "no metadata"."""
    try:
        long_side = max(img.size)
        if img.format in ("JPEG", "MPO") and long_side >= 2 * DRAFT_MIN_SIDE:
            scale = DRAFT_MIN_SIDE / long_side
            img.draft(
                img.mode if img.mode in ("RGB", "L", "CMYK") else "RGB",
                (math.ceil(img.width * scale), math.ceil(img.height * scale)),
            )
        img.load()
    except Image.DecompressionBombError:
        raise _too_many_pixels(img.size) from None
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError):
        # Truncated or corrupt data behind a valid header (RuntimeError: libheif).
        raise _not_an_image() from None


def photo_decode(*, img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation to the loaded pixels and return an sRGB RGB image whose
    long side is at most MAX_SIDE, with no metadata attached."""
    photo_load(img=img)  # a no-op when already loaded
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # a broken orientation tag leaves the picture as it is
        log.info("could not apply the EXIF orientation", exc_info=True)
    icc = img.info.get("icc_profile")
    if img.mode not in ("RGB", "RGBA", "L", "LA", "CMYK"):
        img = _to_standard_mode(img)
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    img = _to_srgb(img, icc)
    img.info = {}  # nothing of the original (EXIF, ICC, XMP, comments) reaches the encoder
    return img


def photo_thumbnail(*, img: Image.Image) -> Image.Image:
    thumb = img.copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    thumb.info = {}
    return thumb


def photo_phash(*, img: Image.Image) -> int:
    """The 64-bit perceptual hash (DCT of a 32x32 grey copy). Given the thumbnail: the hash
    shrinks the picture to 32x32 anyway, and starting from 320 px is 30x cheaper than 2048."""
    return int(str(imagehash.phash(img)), 16)


def photo_encode(*, img: Image.Image, thumbnail: Image.Image) -> tuple[bytes, bytes]:
    """The stored JPEG and its thumbnail, written without any metadata."""
    out, thumb_out = io.BytesIO(), io.BytesIO()
    img.save(out, "JPEG", quality=JPEG_QUALITY)
    thumbnail.save(thumb_out, "JPEG", quality=80)
    return out.getvalue(), thumb_out.getvalue()


def photo_inspect(*, data: bytes, now: datetime | None = None) -> InspectedPhoto:
    """Check an uploaded photo and make what we keep of it. Raises an EvidenceNotAccepted
    subclass (4xx) for anything we refuse; writes nothing."""
    now = now or timezone.now()
    img = photo_open(data=data)
    width, height = img.size
    original_format = _format(img)
    photo_load(img=img)
    taken_at, gps, summary = photo_metadata(img=img, now=now)
    decoded = photo_decode(img=img)
    thumbnail = photo_thumbnail(img=decoded)
    phash = photo_phash(img=thumbnail)
    image_jpeg, thumbnail_jpeg = photo_encode(img=decoded, thumbnail=thumbnail)
    img.close()
    return InspectedPhoto(
        sha256=hashlib.sha256(data).hexdigest(),
        phash=phash,
        original_format=original_format,
        original_bytes=len(data),
        width=width,
        height=height,
        taken_at=taken_at,
        gps=gps,
        exif=summary,
        image_jpeg=image_jpeg,
        thumbnail_jpeg=thumbnail_jpeg,
    )


def _format(img: Image.Image) -> str:
    return _FORMAT_ALIASES.get(img.format or "", img.format or "")


def _not_an_image() -> NotAnImage:
    return NotAnImage(
        _("The file is not a JPEG, PNG, WebP or HEIC image we can read."),
        details={"accepted_formats": ["JPEG", "PNG", "WebP", "HEIC"]},
    )


def _too_many_pixels(size: tuple[int, int] | None) -> ImageTooLarge:
    details: dict[str, Any] = {"max_pixels": settings.PHOTO_MAX_PIXELS}
    if size:
        details.update(width=size[0], height=size[1])
    return ImageTooLarge(
        _("The image has too many pixels (at most %(max_pixels)s).")
        % {"max_pixels": f"{settings.PHOTO_MAX_PIXELS:,}"},
        details=details,
    )


def _to_standard_mode(img: Image.Image) -> Image.Image:
    if img.mode.startswith("I;16") or img.mode == "I":
        return img.point(lambda v: v * (1 / 256), "L")  # 16-bit grey to 8-bit
    has_alpha = img.mode in ("PA", "RGBa", "La") or "transparency" in img.info
    return img.convert("RGBA" if has_alpha else "RGB")


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Colour-manage into sRGB (phones shoot Display P3), then flatten any alpha on white:
    the stored JPEG carries no profile, so its pixels must already be sRGB."""
    alpha = img.getchannel("A") if img.mode in ("RGBA", "LA") else None
    if alpha is not None:
        img = img.convert("RGB" if img.mode == "RGBA" else "L")
    if icc:
        try:
            img = ImageCms.profileToProfile(
                img, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB, outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            # A broken or mismatched profile: keep the pixels as they are.
            log.info("could not apply an embedded colour profile", exc_info=True)
    if img.mode != "RGB":
        img = img.convert("RGB")
    if alpha is not None:
        flat = Image.new("RGB", img.size, (255, 255, 255))
        flat.paste(img, mask=alpha)
        img = flat
    return img


def _clean_text(value: Any, limit: int = 100) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value[:limit] or None


def _capture_time(exif: Image.Exif) -> datetime | None:
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    pairs = (
        (ExifTags.Base.DateTimeOriginal, ExifTags.Base.OffsetTimeOriginal),
        (ExifTags.Base.DateTimeDigitized, ExifTags.Base.OffsetTimeDigitized),
    )
    # Not IFD0's DateTime: that is when software last changed the file.
    for time_tag, offset_tag in pairs:
        raw = _clean_text(ifd.get(time_tag))
        if not raw:
            continue
        try:
            naive = datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            continue
        if naive.year < 1990:
            continue  # a reset camera clock (year 1, 1970): not a capture time
        offset = _OFFSET.match(_clean_text(ifd.get(offset_tag)) or "")
        if offset:
            sign = -1 if offset.group(1) == "-" else 1
            delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3)))
            if delta <= timedelta(hours=14):
                return naive.replace(tzinfo=dt_timezone(sign * delta))
        # Cameras write local wall-clock time; without an offset, take the city's zone.
        return naive.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
    return None


def _degrees(value: Any) -> float | None:
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = d + m / 60 + s / 3600
    return result if result == result else None  # NaN from a 0/0 rational


def _gps_point(exif: Image.Exif) -> Point | None:
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude))
    lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude))
    if lat is None or lon is None or (lat == 0 and lon == 0):  # 0/0: a camera without a fix
        return None
    if (_clean_text(gps.get(ExifTags.GPS.GPSLatitudeRef)) or "N").upper().startswith("S"):
        lat = -lat
    if (_clean_text(gps.get(ExifTags.GPS.GPSLongitudeRef)) or "E").upper().startswith("W"):
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Point(round(lon, 7), round(lat, 7), srid=4326)


def _exif_summary(exif: Image.Exif, taken_at: datetime | None, gps: Point | None) -> dict[str, Any]:
    """The few EXIF facts a reviewer needs, JSON-safe; never the maker notes or thumbnails."""
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    orientation = exif.get(ExifTags.Base.Orientation)
    summary: dict[str, Any] = {
        "make": _clean_text(exif.get(ExifTags.Base.Make)),
        "model": _clean_text(exif.get(ExifTags.Base.Model)),
        "software": _clean_text(exif.get(ExifTags.Base.Software)),
        "datetime_original": _clean_text(ifd.get(ExifTags.Base.DateTimeOriginal)),
        "offset_time_original": _clean_text(ifd.get(ExifTags.Base.OffsetTimeOriginal)),
        "orientation": orientation if isinstance(orientation, int) else None,
        "taken_at": taken_at.isoformat() if taken_at else None,
        "gps": {"lat": gps.y, "lon": gps.x} if gps else None,
    }
    return {k: v for k, v in summary.items() if v is not None}
