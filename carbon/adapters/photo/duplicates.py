"""Near-duplicate photos across all residents: the perceptual hash cut into bands, an index
lookup of the candidates, and a lock so two copies uploaded at once cannot both pass. A new
photo is looked for as it is and in each of its seven symmetries (mirrored, flipped,
rotated, transposed), so a turned copy is found too; stored hashes are of the photo as sent.

The lookup is multi-index hashing. The 64 bits are cut into a few wide bands (4 of 16 bits
at the default distance of 6). Two hashes within the distance D that are cut into m bands
differ in some band by at most D // m bits (pigeonhole: if every band differed by more,
they would differ by at least m * (D // m + 1) > D bits). So the search probes each band
of each searched hash at its own value and at every value within D // m bits of it (1 + 16
at the default), and every photo within the distance is among the candidates. A stored
band row carries the photo's whole hash, so the candidates are read from the index alone
and the distance is checked before any photo row is touched. With 16-bit bands a probe
matches about stored / 65,536 photos: ~1,000 candidates per searched hash at a million
photos, instead of ~14,000 with the former 7 exact bands of 9 bits."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import combinations
from math import comb
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from carbon.adapters.photo.models import ClaimPhoto, PhotoHashBand

#: Hashes this close (in bits of 64) are the same picture: refused outright. Between this
#: and settings.PHOTO_DUPLICATE_DISTANCE a reviewer decides.
SAME_PICTURE_DISTANCE = 2

#: Stored photos the band layout is chosen for (the cost model below).
_PLANNED_PHOTOS = 1_000_000
#: What one index probe costs, in candidates read (a B-tree descent against adjacent
#: index tuples): an estimate. Only its order of magnitude matters: at the default
#: distance any value from 2 to 80 picks the same 4 bands.
_PROBE_COST = 16


@dataclass(frozen=True)
class DuplicateMatch:
    claim_id: Any
    distance: int
    same_file: bool
    uploaded_at: datetime
    #: Which symmetry of the new photo matched: "identity", or a name of images.SYMMETRIES.
    transform: str = "identity"


def _cut(count: int) -> list[tuple[int, int]]:
    """(shift, width) of `count` bands covering the 64 bits, widest first."""
    base, extra = divmod(64, count)
    layout, shift = [], 0
    for i in range(count):
        width = base + (1 if i < extra else 0)
        layout.append((shift, width))
        shift += width
    return layout


@lru_cache(maxsize=32)
def _band_layout(distance: int) -> tuple[tuple[tuple[int, int], ...], int]:
    """The cut of the stored bands for a distance, and the probe radius: the band count
    that makes the fewest probes plus candidates at a million photos. At least 3 bands, so
    a band's value fits the integer column; no more than distance + 1, past which the
    radius is 0 and more bands only add probes."""

    def cost(count: int) -> float:
        width, radius = -(-64 // count), distance // count
        probes = count * sum(comb(width, k) for k in range(radius + 1))
        return probes * _PROBE_COST + probes * _PLANNED_PHOTOS / 2**width

    count = min(range(3, max(distance + 1, 3) + 1), key=lambda c: (cost(c), c))
    return tuple(_cut(count)), distance // count


def _distance(distance: int | None) -> int:
    return settings.PHOTO_DUPLICATE_DISTANCE if distance is None else distance


def hash_bands(phash: int, *, distance: int | None = None) -> list[tuple[int, int]]:
    """The (band key, value) rows stored for a hash. The key records the cut (band count),
    so a change of PHOTO_DUPLICATE_DISTANCE that changes the cut never compares bands cut
    differently: rows of the old cut stop matching until photo_hash_bands_rebuild()."""
    layout, _ = _band_layout(_distance(distance))
    count = len(layout)
    return [
        (count * 64 + i, (phash >> shift) & ((1 << width) - 1))
        for i, (shift, width) in enumerate(layout)
    ]


def hash_probes(phash: int, *, distance: int | None = None) -> dict[int, set[int]]:
    """Band key -> the values to look up for a hash: each band's own value and every value
    within the probe radius of it. A stored hash within the distance has at least one of
    its bands among them (see the module's docstring)."""
    layout, radius = _band_layout(_distance(distance))
    probes: dict[int, set[int]] = {}
    for (key, value), (_, width) in zip(hash_bands(phash, distance=distance), layout, strict=True):
        values = probes.setdefault(key, set())
        for flips in range(radius + 1):
            for bits in combinations(range(width), flips):
                values.add(value ^ sum(1 << b for b in bits))
    return probes


def lock_bands(phash: int, *, distance: int | None = None) -> list[tuple[int, int]]:
    """Keys for the duplicate lock: distance + 1 exact bands, so two hashes within the
    distance always share one (pigeonhole), whatever cut the stored bands use."""
    count = min(max(_distance(distance) + 1, 3), 64)
    return [
        (count * 64 + i, (phash >> shift) & ((1 << width) - 1))
        for i, (shift, width) in enumerate(_cut(count))
    ]


def _signed(phash: int) -> int:
    """A 64-bit hash as PostgreSQL's (signed) bigint holds it."""
    return phash - (1 << 64) if phash >= 1 << 63 else phash


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
    nearest: dict[int, tuple[int, str]] = {}
    for photo_id, other_signed in _candidates(searched):
        other = other_signed & ((1 << 64) - 1)
        distance, transform = min(((other ^ h).bit_count(), name) for h, name in searched.items())
        if distance <= settings.PHOTO_DUPLICATE_DISTANCE:
            nearest[photo_id] = (distance, transform)
    if not nearest:
        return []
    matches = []
    # The lookback is checked here, on the few within the distance, not on the candidates.
    for photo_id, claim_id, other_sha, uploaded_at in ClaimPhoto.objects.filter(
        pk__in=nearest, uploaded_at__gte=since
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


def _candidates(searched: Mapping[int, str]) -> list[tuple[int, int]]:
    """(photo id, signed hash) of the stored bands matching a probe of a searched hash; on
    PostgreSQL only those within the distance of one of them (an index-only scan per band,
    the distance computed on the index tuple). An identical file has an identical hash, so
    it is always among them."""
    probes: dict[int, set[int]] = {}
    for h in searched:
        for key, values in hash_probes(h).items():
            probes.setdefault(key, set()).update(values)
    if connection.vendor == "postgresql":
        hashes = [_signed(h) for h in searched]
        pairs = [(key, value) for key, values in probes.items() for value in sorted(values)]
        # One index-only probe per (band, value), driven by the list: a UNION ALL of one
        # scan per band would do the same work, but the planner runs it as a Parallel
        # Append, whose worker start-up costs ten times the lookup.
        sql = f"""SELECT h.photo_id, h.phash
            FROM unnest(%s::integer[], %s::integer[]) AS p(band, value)
            JOIN {PhotoHashBand._meta.db_table} h ON h.band = p.band AND h.value = p.value
            WHERE {" OR ".join(["bit_count((h.phash # %s::bigint)::bit(64)) <= %s"] * len(hashes))}"""
        params = [
            [key for key, _ in pairs],
            [value for _, value in pairs],
            *(p for h in hashes for p in (h, settings.PHOTO_DUPLICATE_DISTANCE)),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    wanted = Q()
    for key, values in probes.items():
        wanted |= Q(band=key, value__in=sorted(values))
    return list(PhotoHashBand.objects.filter(wanted).values_list("photo_id", "phash"))


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
            for b, v in lock_bands(h)
        }
    )
    # One statement for all of them (up to 8 hashes x 7 bands): the function scan hands
    # the keys over in the array's (sorted) order, and each lock is taken as its row is.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS t(k)", [keys])


def photo_hash_bands_rebuild() -> int:
    """Re-cut every photo's bands for the current PHOTO_DUPLICATE_DISTANCE (after changing
    it). Returns the number of photos re-banded."""
    done, rows = 0, []
    with transaction.atomic():
        PhotoHashBand.objects.all().delete()
        photos = ClaimPhoto.objects.values_list("pk", "phash").iterator(chunk_size=5000)
        for photo_id, phash_hex in photos:
            rows += photo_band_rows(photo_id=photo_id, phash=int(phash_hex, 16))
            done += 1
            if len(rows) >= 10_000:
                PhotoHashBand.objects.bulk_create(rows)
                rows = []
        PhotoHashBand.objects.bulk_create(rows)
    return done


def photo_band_rows(*, photo_id: int, phash: int) -> list[PhotoHashBand]:
    """The band rows to store for a photo (unsaved)."""
    stored = _signed(phash)
    return [
        PhotoHashBand(photo_id=photo_id, band=b, value=v, phash=stored)
        for b, v in hash_bands(phash)
    ]
