"""Recording a sighting: the photos checked and re-encoded before anything is written, EXIF
time and GPS filling what the client left empty, GCJ-02 converted, and one sighting per
client UUID however often a bad network makes the phone retry."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from biodiversity.sightings.grading import sighting_refresh
from biodiversity.sightings.models import Flag, Identification, Sighting
from biodiversity.sightings.photos import (
    photo_bytes_read,
    photos_inspect,
    sighting_photo_discard,
    sighting_photo_store,
)
from biodiversity.sightings.privacy import gcj02_to_wgs84
from biodiversity.taxa.services import taxon_get
from carbon.clock import CLOCK_SKEW
from carbon.errors import DomainError, ErrorCode, IdempotencyConflict
from carbon.models import User

MAX_PHOTOS = 5


class ObservedInFuture(DomainError):
    code = ErrorCode.OBSERVED_IN_FUTURE


@dataclass(frozen=True)
class SightingDraft:
    """What the observer sent (validated for shape by the API's serializer)."""

    taxon: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    coordinate_system: str = "wgs84"
    accuracy_m: int | None = None
    observed_at: datetime | None = None
    count: int = 1
    notes: str = ""
    place_name: str = ""
    obscure: bool = False
    client_uuid: uuid.UUID | None = None


def sighting_submit(
    *, observer: User, draft: SightingDraft, files: Sequence[UploadedFile]
) -> tuple[Sighting, bool]:
    """Create a sighting with its photos; (sighting, created). The same client_uuid with the
    same request answers the first sighting; with another request, IdempotencyConflict."""
    blobs = photo_bytes_read(files=files)
    request_hash = _request_hash(draft, blobs)
    if draft.client_uuid is not None:
        existing = _replay(observer=observer, draft=draft, request_hash=request_hash)
        if existing is not None:
            return existing, False
    taxon = taxon_get(taxon_id=draft.taxon) if draft.taxon is not None else None
    now = timezone.now()
    inspected = photos_inspect(blobs=blobs)  # refusals here write nothing
    observed_at = draft.observed_at or next((p.taken_at for p in inspected if p.taken_at), None)
    if observed_at is not None and observed_at > now + CLOCK_SKEW:
        raise ObservedInFuture(
            _("A sighting cannot be observed in the future; check the phone's clock."),
            details={"observed_at": observed_at.isoformat()},
        )
    location = _location(draft) or next((p.gps.clone() for p in inspected if p.gps), None)
    try:
        with transaction.atomic():
            sighting = Sighting.objects.create(
                observer=observer,
                client_uuid=draft.client_uuid,
                request_hash=request_hash,
                taxon_guess=taxon,
                location=location,
                accuracy_m=draft.accuracy_m,
                place_name=draft.place_name,
                observed_at=observed_at,
                count=draft.count,
                notes=draft.notes,
                observer_obscured=draft.obscure,
                # A first public point; sighting_refresh replaces it before the commit.
                public_location=location.clone() if location else None,
            )
            duplicate = False
            for position, photo in enumerate(inspected, start=1):
                stored = sighting_photo_store(sighting=sighting, inspected=photo, position=position)
                duplicate = duplicate or stored.duplicate_of_id is not None
            if duplicate:
                Flag.objects.create(sighting=sighting, reason=Flag.Reason.DUPLICATE_PHOTO)
            if taxon is not None:
                # The observer's guess is their identification, as on iNaturalist.
                Identification.objects.create(sighting=sighting, user=observer, taxon=taxon)
            sighting_refresh(sighting=sighting)
    except IntegrityError:
        sighting_photo_discard(inspected=inspected)
        if draft.client_uuid is not None:
            existing = _replay(observer=observer, draft=draft, request_hash=request_hash)
            if existing is not None:  # the same upload, committed by a concurrent retry
                return existing, False
        raise
    except BaseException:
        sighting_photo_discard(inspected=inspected)
        raise
    return sighting, True


def _replay(*, observer: User, draft: SightingDraft, request_hash: str) -> Sighting | None:
    existing = Sighting.objects.filter(observer=observer, client_uuid=draft.client_uuid).first()
    if existing is not None and existing.request_hash != request_hash:
        raise IdempotencyConflict(
            _("This client_uuid was already used for a different sighting."),
            details={"sighting": str(existing.pk)},
        )
    return existing


def _location(draft: SightingDraft) -> Point | None:
    if draft.latitude is None or draft.longitude is None:
        return None
    lon, lat = draft.longitude, draft.latitude
    if draft.coordinate_system == "gcj02":
        lon, lat = gcj02_to_wgs84(lon, lat)
    return Point(round(lon, 7), round(lat, 7), srid=4326)


def _request_hash(draft: SightingDraft, blobs: Sequence[bytes]) -> str:
    fields = {
        k: (v.isoformat() if isinstance(v, datetime) else str(v) if v is not None else None)
        for k, v in draft.__dict__.items()
    }
    fields["photos"] = [hashlib.sha256(b).hexdigest() for b in blobs]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
