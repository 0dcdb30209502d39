"""A sighting's photos: inspected by the core's image pipeline (format sniffed from the
content, size and pixel limits, metadata-free re-encode, EXIF kept privately, perceptual
hash), stored, and looked up for near-duplicates among other sightings' photos."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from biodiversity.sightings.models import Sighting, SightingPhoto, SightingPhotoBand
from carbon.adapters.photo.duplicates import hash_bands
from carbon.adapters.photo.images import InspectedPhoto, photo_inspect, photo_size_check

log = logging.getLogger(__name__)


def photo_bytes_read(*, files: Sequence[UploadedFile]) -> list[bytes]:
    """Each upload's bytes, refusing an oversized one before reading it."""
    out = []
    for upload in files:
        photo_size_check(size=upload.size or 0)
        upload.seek(0)
        out.append(upload.read())
    return out


def photos_inspect(*, blobs: Sequence[bytes]) -> list[InspectedPhoto]:
    return [photo_inspect(data=blob) for blob in blobs]


def sighting_photo_store(
    *, sighting: Sighting, inspected: InspectedPhoto, position: int
) -> SightingPhoto:
    """Write the re-encoded image and thumbnail and the photo's rows (inside the sighting's
    transaction); the written names go on `inspected.stored_files` for sighting_photo_discard."""
    photo = SightingPhoto(
        sighting=sighting,
        position=position,
        original_format=inspected.original_format,
        sha256=inspected.sha256,
        phash=inspected.phash_hex,
        taken_at=inspected.taken_at,
        gps=inspected.gps,
        exif=inspected.exif,
    )
    photo.image.save("photo.jpg", ContentFile(inspected.image_jpeg, name="photo.jpg"), save=False)
    inspected.stored_files.append(photo.image.name)
    photo.thumbnail.save(
        "thumbnail.jpg", ContentFile(inspected.thumbnail_jpeg, name="thumbnail.jpg"), save=False
    )
    inspected.stored_files.append(photo.thumbnail.name)
    photo.duplicate_of = _earlier_duplicate(inspected=inspected, sighting=sighting)
    photo.save()
    SightingPhotoBand.objects.bulk_create(
        [SightingPhotoBand(photo=photo, band=b, value=v) for b, v in hash_bands(inspected.phash)]
    )
    return photo


def sighting_photo_discard(*, inspected: Sequence[InspectedPhoto]) -> None:
    """Remove the files written for photos whose transaction did not commit."""
    for one in inspected:
        while one.stored_files:
            name = one.stored_files.pop()
            try:
                default_storage.delete(name)
            except OSError:
                log.warning("could not delete %s after a failed sighting", name, exc_info=True)


def sighting_photo_files_delete(*, photos) -> None:
    """Delete photos' files once the transaction that deletes their rows commits."""
    names = [n for pair in photos.values_list("image", "thumbnail") for n in pair if n]

    def remove() -> None:
        for name in names:
            default_storage.delete(name)

    transaction.on_commit(remove)


def _earlier_duplicate(*, inspected: InspectedPhoto, sighting: Sighting) -> SightingPhoto | None:
    """The nearest photo of another sighting whose hash is within PHOTO_DUPLICATE_DISTANCE of
    this one's (or of a mirrored or rotated copy), or with the same bytes."""
    searched = {inspected.phash, *inspected.symmetry_hashes.values()}
    bands = {pair for h in searched for pair in hash_bands(h)}
    candidates: set[int] = set()
    for band, value in bands:
        candidates.update(
            SightingPhotoBand.objects.filter(band=band, value=value).values_list(
                "photo_id", flat=True
            )
        )
    nearest, best = None, settings.PHOTO_DUPLICATE_DISTANCE + 1
    others = SightingPhoto.objects.exclude(sighting=sighting)
    for photo in others.filter(pk__in=candidates) | others.filter(sha256=inspected.sha256):
        stored = int(photo.phash, 16)
        distance = min(bin(stored ^ h).count("1") for h in searched)
        if photo.sha256 == inspected.sha256:
            distance = 0
        if distance < best:
            nearest, best = photo, distance
    return nearest
