"""Moderation flags: anyone flags a sighting (spam, inappropriate, copyright); a moderator
upholds (the sighting is hidden from everyone but its observer) or dismisses it."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from biodiversity.sightings.access import sighting_visible_get
from biodiversity.sightings.grading import sighting_refresh
from biodiversity.sightings.models import Flag, Sighting
from carbon.errors import DomainError, ErrorCode
from carbon.models import User


class FlagAlreadyOpen(DomainError):
    code = ErrorCode.FLAG_ALREADY_OPEN


def flag_raise(*, user: User, sighting_id: Any, reason: str, note: str = "") -> Flag:
    try:
        with transaction.atomic():
            sighting = sighting_visible_get(viewer=user, sighting_id=sighting_id)
            sighting = Sighting.objects.select_for_update().get(pk=sighting.pk)
            flag = Flag.objects.create(sighting=sighting, user=user, reason=reason, note=note)
            sighting_refresh(sighting=sighting)  # an open flag keeps it from research grade
    except IntegrityError:
        raise FlagAlreadyOpen() from None
    return flag


@transaction.atomic
def flag_resolve(*, flag_id: int, moderator: User, uphold: bool) -> Flag:
    """Uphold or dismiss an open flag (a resolved one is left as it is)."""
    flag = Flag.objects.select_for_update().get(pk=flag_id)
    if flag.status != Flag.Status.OPEN:
        return flag
    flag.status = Flag.Status.UPHELD if uphold else Flag.Status.DISMISSED
    flag.resolved_by = moderator
    flag.resolved_at = timezone.now()
    flag.save(update_fields=["status", "resolved_by", "resolved_at"])
    sighting = Sighting.objects.select_for_update().get(pk=flag.sighting_id)
    if uphold:
        sighting.hidden = True
    sighting_refresh(sighting=sighting)
    return flag
