"""Near-duplicate photos across all residents: the perceptual hash cut into bands, an index
lookup of the candidates, and a lock so two copies uploaded at once cannot both pass. A new
photo is looked for as it is and in each of its seven symmetries (mirrored, flipped,
rotated, transposed), so a turned copy is found too; stored hashes are of the photo as sent."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from carbon.adapters.photo.models import ClaimPhoto, PhotoHashBand

#: Hashes this close (in bits of 64) are the same picture: refused outright. Between this
#: and settings.PHOTO_DUPLICATE_DISTANCE a reviewer decides.
SAME_PICTURE_DISTANCE = 2


@dataclass(frozen=True)
class DuplicateMatch:
    claim_id: Any
    distance: int
    same_file: bool
    uploaded_at: datetime
    #: Which symmetry of the new photo matched: "identity", or a name of images.SYMMETRIES.
    transform: str = "identity"


def _band_layout(distance: int) -> list[tuple[int, int]]:
    """(shift, width) of each band. With more bands than the distance, two hashes within
    the distance agree on at least one whole band (pigeonhole). At least 3 bands, so a
    band's value fits the integer column."""
    count = min(max(distance + 1, 3), 64)
    base, extra = divmod(64, count)
    layout, shift = [], 0
    for i in range(count):
        width = base + (1 if i < extra else 0)
        layout.append((shift, width))
        shift += width
    return layout


def hash_bands(phash: int, *, distance: int | None = None) -> list[tuple[int, int]]:
    """(band key, value) rows for a hash. The key records the layout (band count), so a
    change of PHOTO_DUPLICATE_DISTANCE never compares bands cut differently: rows of the
    old layout stop matching until photo_hash_bands_rebuild() re-cuts them."""
    layout = _band_layout(settings.PHOTO_DUPLICATE_DISTANCE if distance is None else distance)
    count = len(layout)
    return [
        (count * 64 + i, (phash >> shift) & ((1 << width) - 1))
        for i, (shift, width) in enumerate(layout)
    ]


def _searched(phash: int, symmetry_hashes: Mapping[str, int] | None) -> dict[int, str]:
    """Each hash to look for, with the symmetry it stands for (the first name wins when a
    symmetric picture hashes the same turned)."""
    searched = {phash: "identity"}
    for name, value in (symmetry_hashes or {}).items():
        searched.setdefault(value, name)
    return searched


def photo_duplicates_find(
    *,
    phash: int,
    sha256: str,
    now: datetime | None = None,
    symmetry_hashes: Mapping[str, int] | None = None,
) -> list[DuplicateMatch]:
    """Photos of any resident, uploaded within the lookback, whose hash is within
    PHOTO_DUPLICATE_DISTANCE bits of this photo's or of one of its `symmetry_hashes` (or
    whose file is identical). Nearest first."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.PHOTO_DUPLICATE_LOOKBACK_DAYS)
    searched = _searched(phash, symmetry_hashes)
    wanted = Q()
    for band, value in sorted({bv for h in searched for bv in hash_bands(h)}):
        wanted |= Q(band=band, value=value)
    # Candidates are many (about 7 x stored / 512 per hash with the default layout): fetch
    # only the hash for them, and the rest for the few within the distance. An identical
    # file has an identical hash, so it is always among the candidates.
    candidates = PhotoHashBand.objects.filter(wanted, photo__uploaded_at__gte=since).values_list(
        "photo_id", "photo__phash"
    )
    nearest: dict[int, tuple[int, str]] = {}
    for photo_id, other_hex in candidates:
        other = int(other_hex, 16)
        distance, transform = min(((other ^ h).bit_count(), name) for h, name in searched.items())
        if distance <= settings.PHOTO_DUPLICATE_DISTANCE:
            nearest[photo_id] = (distance, transform)
    if not nearest:
        return []
    matches = []
    for photo_id, claim_id, other_sha, uploaded_at in ClaimPhoto.objects.filter(
        pk__in=nearest
    ).values_list("pk", "claim_id", "sha256", "uploaded_at"):
        same_file = other_sha == sha256
        distance, transform = nearest[photo_id]
        matches.append(
            DuplicateMatch(
                claim_id,
                0 if same_file else distance,
                same_file,
                uploaded_at,
                "identity" if same_file else transform,
            )
        )
    matches.sort(key=lambda m: (m.distance, not m.same_file, m.uploaded_at))
    return matches


def photo_duplicate_lock(*, phash: int, symmetry_hashes: Mapping[str, int] | None = None) -> None:
    """Serialise concurrent uploads of near-identical photos by different residents, so two
    copies submitted at the same moment cannot both pass the search. Call inside the
    claim's transaction, before photo_duplicates_find.

    PostgreSQL: transaction-scoped advisory locks on each band of each searched hash (two
    hashes within the distance share a band, hence a lock: a turned copy's searched hashes
    include one near the original's own; taken in sorted order, so never a deadlock). Under
    READ COMMITTED the search after the wait sees the winner's committed photo. SQLite runs
    claim transactions as BEGIN IMMEDIATE, which already serialises every writer.
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted(
        {
            int.from_bytes(
                hashlib.sha256(f"carbon.photo-band:{b}:{v}".encode()).digest()[:8],
                "big",
                signed=True,
            )
            for h in _searched(phash, symmetry_hashes)
            for b, v in hash_bands(h)
        }
    )
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def photo_hash_bands_rebuild() -> int:
    """Re-cut every photo's bands for the current PHOTO_DUPLICATE_DISTANCE (after changing
    it). Returns the number of photos re-banded."""
    done, rows = 0, []
    with transaction.atomic():
        PhotoHashBand.objects.all().delete()
        photos = ClaimPhoto.objects.values_list("pk", "phash").iterator(chunk_size=5000)
        for photo_id, phash_hex in photos:
            rows += [
                PhotoHashBand(photo_id=photo_id, band=b, value=v)
                for b, v in hash_bands(int(phash_hex, 16))
            ]
            done += 1
            if len(rows) >= 10_000:
                PhotoHashBand.objects.bulk_create(rows)
                rows = []
        PhotoHashBand.objects.bulk_create(rows)
    return done
