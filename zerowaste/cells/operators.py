"""What a cell's operator does through the API: apply (becoming its operator), update its
details, record monthly achievements, send evidence photos, ask for renewal, apply again.
An operator reaches only the cells they operate: anything else is "not found"."""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.gis.geos import Point
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from carbon.adapters.photo.images import photo_inspect
from carbon.errors import DomainError, ErrorCode, IdempotencyConflict
from carbon.models import Community, District, User
from carbon.services.people import resident_lock
from zerowaste.cells.errors import CellNotFound, CellNotUpdatable, UnknownIndicator
from zerowaste.cells.lifecycle import cell_transition
from zerowaste.cells.models import (
    Achievement,
    Cell,
    CellOperator,
    CellStatus,
    CellTransition,
    Evidence,
    Indicator,
)

log = logging.getLogger(__name__)

#: Fields an operator may change after applying.
UPDATABLE = ("name", "name_en", "description", "contact_name", "contact_phone", "population")
CLOSED = (CellStatus.REVOKED, CellStatus.REJECTED)


def operated_cell(*, user: User, cell_id: Any, lock: bool = False) -> Cell:
    cells = Cell.objects.operated_by(user)
    if lock:
        cells = cells.select_for_update()
    cell = cells.filter(pk=cell_id).first()
    if cell is None:
        raise CellNotFound()
    return cell


def cell_apply(
    *,
    user: User,
    idempotency_key: str,
    kind: str,
    name: str,
    district_code: str,
    location: Point,
    name_en: str = "",
    description: str = "",
    community_code: str | None = None,
    contact_name: str = "",
    contact_phone: str = "",
    population: int = 1,
) -> tuple[Cell, bool]:
    """A new application; the applicant becomes the cell's operator. The same key again
    answers the same cell (created False); with other details, an idempotency conflict."""
    district = District.objects.filter(code=district_code).first()
    if district is None:
        raise DomainError(
            _("No district has this code."), details={"field": "district"}, code=ErrorCode.INVALID
        )
    community = None
    if community_code:
        community = Community.objects.filter(code=community_code, district=district).first()
        if community is None:
            raise DomainError(
                _("No community of this district has this code."),
                details={"field": "community"},
                code=ErrorCode.INVALID,
            )
    with transaction.atomic():
        resident_lock(user=user)  # never beside an erasure of this resident
        link = (
            CellOperator.objects.select_related("cell")
            .filter(user=user, application_key=idempotency_key)
            .first()
        )
        existing = link.cell if link else None
        if existing is not None:
            if (existing.kind, existing.name, existing.district_id) != (kind, name, district.pk):
                raise IdempotencyConflict()
            return existing, False
        cell = Cell.objects.create(
            kind=kind,
            name=name,
            name_en=name_en,
            description=description,
            district=district,
            community=community,
            location=location,
            contact_name=contact_name,
            contact_phone=contact_phone,
            population=population,
        )
        CellOperator.objects.create(cell=cell, user=user, application_key=idempotency_key)
        CellTransition.objects.create(
            cell=cell,
            action="apply",
            from_status=CellStatus.APPLIED,
            to_status=CellStatus.APPLIED,
            actor=user,
            reason="Application sent through the app.",
        )
    return cell, True


def cell_update(
    *, user: User, cell_id: Any, changes: dict[str, Any], location: Point | None = None
) -> Cell:
    with transaction.atomic():
        cell = operated_cell(user=user, cell_id=cell_id, lock=True)
        if cell.status in CLOSED:
            raise CellNotUpdatable()
        fields = []
        for name in UPDATABLE:
            if name in changes:
                setattr(cell, name, changes[name])
                fields.append(name)
        if location is not None:
            cell.location = location
            fields.append("location")
        if fields:
            cell.save(update_fields=fields)
    return cell


def achievements_record(
    *, user: User, cell_id: Any, month: date, values: dict[str, Decimal]
) -> list[Achievement]:
    """Set the month's values (indicator code -> value) of one of my cells; all or none."""
    month = month.replace(day=1)
    with transaction.atomic():
        cell = operated_cell(user=user, cell_id=cell_id, lock=True)
        if cell.status in CLOSED:
            raise CellNotUpdatable()
        indicators = {i.code: i for i in Indicator.objects.filter(kind=cell.kind)}
        unknown = sorted(set(values) - set(indicators))
        if unknown:
            raise UnknownIndicator(
                details={"indicators": unknown, "known": sorted(indicators)},
            )
        rows = []
        for code, value in values.items():
            row, _ = Achievement.objects.update_or_create(
                cell=cell, indicator=indicators[code], month=month, defaults={"value": value}
            )
            rows.append(row)
    return rows


def evidence_add(
    *, user: User, cell_id: Any, data: bytes, caption: str, idempotency_key: str
) -> tuple[Evidence, bool]:
    """A photo for one of my cells, through the core's image pipeline (format from the
    content, size and pixel limits, re-encoded without metadata). The same key answers the
    photo it already stored."""
    cell = operated_cell(user=user, cell_id=cell_id)
    existing = Evidence.objects.filter(cell=cell, idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    if cell.status in CLOSED:
        raise CellNotUpdatable()
    inspected = photo_inspect(data=data, now=timezone.now())  # raises for a non-image
    evidence = Evidence(
        cell=cell,
        uploaded_by=user,
        idempotency_key=idempotency_key,
        caption=caption,
        sha256=inspected.sha256,
        phash=inspected.phash_hex,
    )
    evidence.image.save(f"{evidence.pk}.jpg", ContentFile(inspected.image_jpeg), save=False)
    evidence.thumbnail.save(
        f"{evidence.pk}-thumb.jpg", ContentFile(inspected.thumbnail_jpeg), save=False
    )
    written = [evidence.image.name, evidence.thumbnail.name]
    try:
        with transaction.atomic():
            operated_cell(user=user, cell_id=cell_id, lock=True)  # still mine
            evidence.save()
    except IntegrityError:
        # A concurrent retry with the same key stored it first: answer that one.
        _forget(written)
        return Evidence.objects.get(cell=cell, idempotency_key=idempotency_key), False
    except Exception:
        _forget(written)
        raise
    return evidence, True


def _forget(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            log.warning("could not remove %s", name, exc_info=True)


def cell_renewal_request(*, user: User, cell_id: Any, now: datetime | None = None) -> Cell:
    cell = operated_cell(user=user, cell_id=cell_id)
    return cell_transition(
        cell_id=cell.pk,
        action="request_renewal",
        actor=user,
        reason="The operator asked for renewal.",
        now=now,
        as_operator=True,
    )


def cell_reapply(*, user: User, cell_id: Any) -> Cell:
    cell = operated_cell(user=user, cell_id=cell_id)
    return cell_transition(
        cell_id=cell.pk,
        action="reapply",
        actor=user,
        reason="The operator applied again.",
        as_operator=True,
    )
