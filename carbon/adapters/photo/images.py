"""The image pipeline, with no database: an upload's format sniffed from its content, size and
pixel limits, a reduced decode, the EXIF capture time and GPS kept as private facts, the
re-encoded copy and thumbnail without any metadata, and the perceptual hash. Claim photos
use it; sightings and cell evidence are to reuse it.

Memory: an upload is decoded at the size the checks need (JPEG in the DCT, at 1/2 to 1/8),
or else into one full-size copy that is shrunk strip by strip and dropped before anything
else is made; at most settings.PHOTO_INSPECT_CONCURRENCY uploads are decoded at once per
process. README "Photo memory" states the bound per upload; tests/carbon/test_photo_memory.py
measures it."""

from __future__ import annotations

import hashlib
import io
import logging
import math
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError
from pillow_heif import open_heif, register_heif_opener

from carbon.clock import CLOCK_SKEW
from carbon.errors import DomainError, ErrorCode, EvidenceNotAccepted

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
# Other formats decode in full; the full-size copy is shrunk by a whole factor (a box
# average) to a long side of at least MAX_SIDE, this many source rows at a time, so a mode
# conversion (palette to RGBA, 16-bit to 8-bit) never makes a second full-size copy.
STRIP_ROWS = 256

#: The most memory one upload takes while it is inspected, as measured peaks (README "Photo
#: memory", tests/carbon/test_photo_memory.py): bytes per pixel of the image, by format, plus
#: a fixed allowance for the shrunk copy, the thumbnail and the encoders. JPEG: a
#: progressive file keeps 2 bytes per pixel per colour component until its last scan (4
#: components for CMYK); baseline ones decode at 1/2 to 1/8 scale. PNG: the one full-size
#: copy (4 bytes a pixel with alpha). HEIF: libheif's planes and its RGB(A) output. WebP:
#: libwebp keeps two full RGBA canvases and hands a third copy over.
PEAK_BYTES_PER_PIXEL = {"JPEG": 9, "PNG": 5, "HEIF": 7, "WEBP": 12}
PEAK_FIXED_BYTES = 48 * 1024 * 1024


def photo_memory_bound(*, max_pixels: int, fmt: str | None = None) -> int:
    """The peak memory (bytes) of inspecting one upload of at most `max_pixels`, in `fmt` or
    in the costliest accepted format."""
    per_pixel = PEAK_BYTES_PER_PIXEL[fmt] if fmt else max(PEAK_BYTES_PER_PIXEL.values())
    return per_pixel * max_pixels + PEAK_FIXED_BYTES


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


class PhotoWorkBusy(DomainError):
    """Every image-work slot of this process stayed taken for the whole wait: answer at once
    (503, retry shortly) rather than queue uploads, and their memory, without end."""

    code = ErrorCode.PHOTO_WORK_BUSY


# --- how many uploads are decoded at once ------------------------------------------------

_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _work_slots() -> threading.BoundedSemaphore:
    """The process's semaphore, sized by settings.PHOTO_INSPECT_CONCURRENCY (made anew if the
    setting changes, as in tests)."""
    global _slots
    size = max(1, settings.PHOTO_INSPECT_CONCURRENCY)
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


@contextmanager
def photo_work_slot() -> Iterator[None]:
    """Hold one of the process's image-work slots; PhotoWorkBusy after waiting
    settings.PHOTO_INSPECT_WAIT_SECONDS for one."""
    slots = _work_slots()
    wait = settings.PHOTO_INSPECT_WAIT_SECONDS
    if not slots.acquire(timeout=wait):
        raise PhotoWorkBusy(
            _("Too many photos are being processed right now; send it again in a few seconds."),
            details={"retry_after_seconds": max(1, math.ceil(wait))},
        )
    try:
        yield
    finally:
        slots.release()


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
    # The hashes of the thumbnail mirrored, flipped, rotated and transposed (the other seven
    # symmetries of the square), by name: the duplicate search looks for each, so a mirrored
    # or rotated copy of an earlier photo is found. Only `phash` is stored.
    symmetry_hashes: dict[str, int] = field(default_factory=dict)
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
    with _decoding(img.size):
        long_side = max(img.size)
        if img.format in ("JPEG", "MPO") and long_side >= 2 * DRAFT_MIN_SIDE:
            scale = DRAFT_MIN_SIDE / long_side
            img.draft(
                img.mode if img.mode in ("RGB", "L", "CMYK") else "RGB",
                (math.ceil(img.width * scale), math.ceil(img.height * scale)),
            )
        img.load()


def photo_pixels(*, img: Image.Image, data: bytes) -> Image.Image:
    """The decoded picture of an opened upload, holding as little as the format allows.

    JPEG and PNG: `img` itself, loaded (photo_load). WebP and HEIF: their decoders keep
    buffers of their own, and Pillow's plugins copy those into a second full-size image, so
    the pixels are taken here straight from the decoder's output (`img` is left unloaded;
    its metadata is already read at open). Read the metadata from `img` before calling this.
    """
    fmt = _format(img)
    if fmt == "WEBP":
        return _webp_pixels(data, img.size)
    if fmt == "HEIF":
        return _heif_pixels(data, img.size)
    photo_load(img=img)
    return img


def photo_decode(*, img: Image.Image, pixels: Image.Image | None = None) -> Image.Image:
    """Apply the EXIF orientation and return an sRGB RGB image whose long side is at most
    MAX_SIDE, with no metadata attached. `pixels` is what photo_pixels returned (default:
    img's own, loaded here). The full-size pixels are released once shrunk: `img` is closed."""
    if pixels is None:
        photo_load(img=img)  # a no-op when already loaded
        pixels = img
    icc = img.info.get("icc_profile")
    transpose = _orientation_transpose(img)
    small = _shrunk(pixels)
    if small is not pixels:
        pixels.close()
        img.close()
    if transpose is not None:
        small = small.transpose(transpose)
    small.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    small = _to_srgb(small, icc)
    small.info = {}  # nothing of the original (EXIF, ICC, XMP, comments) reaches the encoder
    return small


def photo_thumbnail(*, img: Image.Image) -> Image.Image:
    thumb = img.copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    thumb.info = {}
    return thumb


def photo_phash(*, img: Image.Image) -> int:
    """The 64-bit perceptual hash (DCT of a 32x32 grey copy). Given the thumbnail: the hash
    shrinks the picture to 32x32 anyway, and starting from 320 px is 30x cheaper than 2048."""
    return int(str(imagehash.phash(img)), 16)


#: The seven symmetries of the square besides the identity, as Pillow transposes.
SYMMETRIES = {
    "mirrored": Image.Transpose.FLIP_LEFT_RIGHT,
    "flipped": Image.Transpose.FLIP_TOP_BOTTOM,
    "rotated_90": Image.Transpose.ROTATE_90,
    "rotated_180": Image.Transpose.ROTATE_180,
    "rotated_270": Image.Transpose.ROTATE_270,
    "transposed": Image.Transpose.TRANSPOSE,
    "transversed": Image.Transpose.TRANSVERSE,
}


def photo_symmetry_hashes(*, thumbnail: Image.Image) -> dict[str, int]:
    """The perceptual hash of each symmetry of the thumbnail. The hash is not invariant
    under any of them (a mirror changes the sign of half the DCT terms and so the median),
    so each is hashed from the turned picture; at 320 px that costs about a millisecond."""
    return {
        name: photo_phash(img=thumbnail.transpose(method)) for name, method in SYMMETRIES.items()
    }


def photo_encode(*, img: Image.Image, thumbnail: Image.Image) -> tuple[bytes, bytes]:
    """The stored JPEG and its thumbnail, written without any metadata."""
    out, thumb_out = io.BytesIO(), io.BytesIO()
    img.save(out, "JPEG", quality=JPEG_QUALITY)
    thumbnail.save(thumb_out, "JPEG", quality=80)
    return out.getvalue(), thumb_out.getvalue()


def photo_inspect(*, data: bytes, now: datetime | None = None) -> InspectedPhoto:
    """Check an uploaded photo and make what we keep of it. Raises an EvidenceNotAccepted
    subclass (4xx) for anything we refuse, PhotoWorkBusy (503) when the process is already
    decoding as many photos as it may; writes nothing."""
    now = now or timezone.now()
    img = photo_open(data=data)  # the header only: refusals by size cost no decoding
    width, height = img.size
    original_format = _format(img)
    with photo_work_slot():
        try:
            if original_format in ("WEBP", "HEIF"):
                # Their metadata comes with the header; their pixels from the decoder.
                taken_at, gps, summary = photo_metadata(img=img, now=now)
                pixels = photo_pixels(img=img, data=data)
            else:
                pixels = photo_pixels(img=img, data=data)
                taken_at, gps, summary = photo_metadata(img=img, now=now)
            decoded = photo_decode(img=img, pixels=pixels)
            del pixels
            thumbnail = photo_thumbnail(img=decoded)
            phash = photo_phash(img=thumbnail)
            symmetry_hashes = photo_symmetry_hashes(thumbnail=thumbnail)
            image_jpeg, thumbnail_jpeg = photo_encode(img=decoded, thumbnail=thumbnail)
        finally:
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
        symmetry_hashes=symmetry_hashes,
    )


# --- decoding with one full-size copy at most ----------------------------------------------


@contextmanager
def _decoding(size: tuple[int, int]) -> Iterator[None]:
    """Corrupt or truncated data behind a valid header is "not an image"."""
    try:
        yield
    except Image.DecompressionBombError:
        raise _too_many_pixels(size) from None
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError, TypeError):
        # RuntimeError: libheif; TypeError: a decoder that returned nothing.
        raise _not_an_image() from None


def _webp_pixels(data: bytes, size: tuple[int, int]) -> Image.Image:
    """The first frame, read from libwebp's output without Pillow's second copy: the decoder
    (and its two canvases) is dropped before the frame becomes an image sharing its bytes."""
    from PIL import _webp  # Pillow's own binding, the one its WebP plugin uses

    with _decoding(size):
        decoder = _webp.WebPAnimDecoder(data)
        decoded_size, *_, rawmode = decoder.get_info()
        frame = decoder.get_next()
        del decoder
        pixels, _timestamp = frame
        if tuple(decoded_size) != tuple(size):
            raise ValueError("the frame is not the size the header says")
        return Image.frombuffer(
            "RGBA" if rawmode == "RGBA" else "RGBX", size, pixels, "raw", rawmode, 0, 1
        )


def _heif_pixels(data: bytes, size: tuple[int, int]) -> Image.Image:
    """The primary image as libheif decodes it, shrunk here strip by strip: Pillow's plugin
    would copy the whole decoded buffer into a second full-size image first."""
    with _decoding(size):
        heif = open_heif(
            io.BytesIO(data), convert_hdr_to_8bit=True, hdr_to_16bit=True, remove_stride=False
        )
        buffer = memoryview(heif.data)
        mode, stride, (w, h) = heif.mode, heif.stride, heif.size
        if (w, h) != tuple(size):
            raise ValueError("the decoded image is not the size the header says")
        if mode not in ("RGB", "RGBA", "L"):
            raise ValueError(f"unexpected HEIF pixel mode {mode}")

        def rows(top: int, bottom: int) -> Image.Image:
            return Image.frombuffer(
                mode,
                (w, bottom - top),
                buffer[top * stride : bottom * stride],
                "raw",
                mode,
                stride,
                1,
            )

        return _shrunk_rows((w, h), mode, mode, rows)


def _standard_mode(img: Image.Image) -> str:
    """The mode the rest of the pipeline works in: RGB, RGBA, L, LA or CMYK."""
    if img.mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return img.mode
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        return "L"
    if img.mode in ("PA", "RGBa", "La") or "transparency" in img.info:
        return "LA" if img.mode == "La" else "RGBA"
    return "RGB"


def _to_mode(part: Image.Image, mode: str) -> Image.Image:
    if part.mode == mode:
        return part
    if part.mode.startswith("I;16") or part.mode in ("I", "F"):
        return part.point(lambda v: v * (1 / 256), "L")  # 16-bit grey to 8-bit
    return part.convert(mode)


def _shrunk(pixels: Image.Image) -> Image.Image:
    """`pixels` in a standard mode, shrunk by a whole factor to a long side of at least
    MAX_SIDE. The same image when nothing is to be done."""
    mode = _standard_mode(pixels)
    factor = max(1, max(pixels.size) // MAX_SIDE)
    if factor == 1 and pixels.mode == mode:
        return pixels
    w = pixels.width
    return _shrunk_rows(
        pixels.size, pixels.mode, mode, lambda top, bottom: pixels.crop((0, top, w, bottom))
    )


def _shrunk_rows(
    size: tuple[int, int], source_mode: str, mode: str, rows: Callable[[int, int], Image.Image]
) -> Image.Image:
    """Build the shrunk, converted copy from `rows(top, bottom)` strips of the source, so at
    most one strip exists beside the source and the result."""
    w, h = size
    factor = max(1, max(size) // MAX_SIDE)
    out = Image.new(mode, (math.ceil(w / factor), math.ceil(h / factor)))
    step = factor * max(1, STRIP_ROWS // factor)  # whole blocks, so strips average alike
    for top in range(0, h, step):
        strip = _to_mode(rows(top, min(h, top + step)), mode)
        if factor > 1:
            strip = strip.reduce(factor)
        out.paste(strip, (0, top // factor))
    return out


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation_transpose(img: Image.Image) -> Image.Transpose | None:
    """How to turn the picture upright, from the EXIF orientation (as
    ImageOps.exif_transpose reads it); applied to the shrunk copy, where it is cheap."""
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # a broken orientation tag leaves the picture as it is
        log.info("could not read the EXIF orientation", exc_info=True)
        return None
    return _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None


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
