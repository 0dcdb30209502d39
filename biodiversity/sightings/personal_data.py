"""The biodiversity app's personal data: a person's sightings (true points, notes, photos
with their private EXIF and GPS), identifications and verdicts, flags, the log of true
points they saw, and their institution and survey memberships.

Erasure: research-grade sightings that are public stay as anonymous scientific records
(others identified them and the Darwin Core export cites them): the link to the person, the
client UUID, notes, place name and the photos' EXIF, GPS and capture time go; the true point
stays, no longer tied to anyone (an obscured one stays obscured). Every other sighting of
theirs is deleted with its photos. Identifications, verdicts, flags and access-log entries
stay, unlinked (they decide other people's community taxa and grades, and the log must still
show that a true point was seen). Memberships are deleted."""

from __future__ import annotations

from typing import Any

from biodiversity.institutions.models import InstitutionMember, ProjectMember
from biodiversity.sightings.models import (
    Flag,
    Identification,
    QualityGrade,
    Sighting,
    SightingPhoto,
    SightingPhotoBand,
    TrueLocationAccess,
    Verdict,
)
from biodiversity.sightings.photos import sighting_photo_files_delete
from carbon.models import User
from carbon.personal_data import PersonalData


def _point(p) -> list[float] | None:
    return [p.x, p.y] if p is not None else None


def sightings_export(*, user: User) -> list[dict[str, Any]]:
    out = []
    for s in (
        Sighting.objects.filter(observer=user).prefetch_related("photos").order_by("created_at")
    ):
        out.append(
            {
                "id": str(s.pk),
                "client_uuid": str(s.client_uuid) if s.client_uuid else None,
                "observed_at": s.observed_at.isoformat() if s.observed_at else None,
                "location": _point(s.location),
                "accuracy_m": s.accuracy_m,
                "public_location": _point(s.public_location),
                "obscured": s.obscured,
                "place_name": s.place_name,
                "notes": s.notes,
                "count": s.count,
                "quality_grade": s.quality_grade,
                "hidden": s.hidden,
                "created_at": s.created_at.isoformat(),
                "photos": [
                    {
                        "url": f"/api/v1/biodiversity/sightings/{s.pk}/photos/{p.position}",
                        "taken_at": p.taken_at.isoformat() if p.taken_at else None,
                        "gps": _point(p.gps),
                        "exif": p.exif,
                    }
                    for p in s.photos.all()
                ],
            }
        )
    return out


def sightings_erase(*, user: User) -> None:
    mine = Sighting.objects.filter(observer=user)
    kept = mine.filter(quality_grade=QualityGrade.RESEARCH, hidden=False)
    SightingPhoto.objects.filter(sighting__in=kept).update(exif={}, gps=None, taken_at=None)
    gone = mine.exclude(pk__in=kept.values("pk"))
    sighting_photo_files_delete(photos=SightingPhoto.objects.filter(sighting__in=gone))
    gone.delete()
    kept.update(observer=None, client_uuid=None, request_hash="", notes="", place_name="")


def identifications_export(*, user: User) -> dict[str, Any]:
    return {
        "identifications": [
            {
                "sighting": str(i.sighting_id),
                "taxon": i.taxon.scientific_name,
                "current": i.current,
                "comment": i.comment,
                "created_at": i.created_at.isoformat(),
            }
            for i in Identification.objects.filter(user=user).select_related("taxon")
        ],
        "verdicts": [
            {
                "sighting": str(v.sighting_id),
                "institution": str(v.institution),
                "outcome": v.outcome,
                "note": v.note,
                "created_at": v.created_at.isoformat(),
            }
            for v in Verdict.objects.filter(user=user).select_related("institution")
        ],
    }


def identifications_erase(*, user: User) -> None:
    Identification.objects.filter(user=user).update(user=None, comment="")
    Verdict.objects.filter(user=user).update(user=None)


def flags_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "sighting": str(f.sighting_id),
            "reason": f.reason,
            "note": f.note,
            "status": f.status,
            "created_at": f.created_at.isoformat(),
        }
        for f in Flag.objects.filter(user=user)
    ]


def flags_erase(*, user: User) -> None:
    Flag.objects.filter(user=user).update(user=None, note="")
    Flag.objects.filter(resolved_by=user).update(resolved_by=None)


def access_log_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "sighting": str(a.sighting_id),
            "project": a.project.slug if a.project else None,
            "accessed_at": a.accessed_at.isoformat(),
        }
        for a in TrueLocationAccess.objects.filter(user=user).select_related("project")
    ]


def access_log_erase(*, user: User) -> None:
    TrueLocationAccess.objects.filter(user=user).update(user=None)


def memberships_export(*, user: User) -> dict[str, Any]:
    return {
        "institutions": [
            str(m.institution)
            for m in InstitutionMember.objects.filter(user=user).select_related("institution")
        ],
        "projects": [
            {"project": m.project.slug, "role": m.role}
            for m in ProjectMember.objects.filter(user=user).select_related("project")
        ],
    }


def memberships_erase(*, user: User) -> None:
    InstitutionMember.objects.filter(user=user).delete()
    ProjectMember.objects.filter(user=user).delete()


PROVIDERS = (
    PersonalData(
        "biodiversity_sightings",
        (Sighting, SightingPhoto, SightingPhotoBand),
        sightings_export,
        sightings_erase,
    ),
    PersonalData(
        "biodiversity_identifications",
        (Identification, Verdict),
        identifications_export,
        identifications_erase,
    ),
    PersonalData("biodiversity_flags", (Flag,), flags_export, flags_erase),
    PersonalData(
        "biodiversity_true_location_accesses",
        (TrueLocationAccess,),
        access_log_export,
        access_log_erase,
    ),
    PersonalData(
        "biodiversity_memberships",
        (InstitutionMember, ProjectMember),
        memberships_export,
        memberships_erase,
    ),
)
