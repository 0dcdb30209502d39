"""The photo slice's personal data: a resident's claim photos, with their private EXIF
facts and GPS, and the perceptual-hash bands that index them."""

from __future__ import annotations

from typing import Any

from carbon.adapters.photo.models import ClaimPhoto, PhotoHashBand
from carbon.adapters.photo.storage import photos_erase_for_user
from carbon.models import User
from carbon.personal_data import PersonalData


def photos_export(*, user: User) -> list[dict[str, Any]]:
    """Each photo's facts; the image itself is fetched from its URL (the stored copy holds no
    metadata). The hash bands are derived from the image and carry nothing of their own."""
    return [
        {
            "claim": str(p.claim_id),
            "uploaded_at": p.uploaded_at.isoformat(),
            "taken_at": p.taken_at.isoformat() if p.taken_at else None,
            "gps": [p.gps.x, p.gps.y] if p.gps else None,
            "exif": p.exif,
            "url": f"/api/v1/claims/{p.claim_id}/photo",
        }
        for p in ClaimPhoto.objects.filter(claim__user=user).order_by("uploaded_at", "id")
    ]


def photos_erase(*, user: User) -> None:
    """The photos, their EXIF, GPS and hash bands go now, their files once the erasure
    commits. The claims stay (the ledger refers to them)."""
    photos_erase_for_user(user=user)


PROVIDERS = (PersonalData("photos", (ClaimPhoto, PhotoHashBand), photos_export, photos_erase),)
