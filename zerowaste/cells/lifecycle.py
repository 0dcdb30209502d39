"""A cell's certification lifecycle: which moves exist, from where, under which named
permission, and what each does; the periodic expiry and renewal reminders. Every move
locks the cell, checks it is allowed from where the cell is, and records who and why.

    applied -> under_review -> in_notice (公示, fixed days) -> certified
    certified -> suspended -> certified (reinstate)      certified -> certified (renew)
    certified / suspended / in_notice -> revoked         certified / suspended -> expired
    applied / under_review -> rejected                   in_notice -> under_review
    expired / rejected -> applied (the operator applies again)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from carbon.errors import DomainError, ErrorCode
from carbon.models import User
from zerowaste.cells.errors import CellNotFound, CellTransitionNotAllowed, ReasonRequired
from zerowaste.cells.models import (
    Cell,
    CellReminder,
    CellStatus,
    CellTransition,
    validity_for,
)

log = logging.getLogger(__name__)
S = CellStatus

#: The reason column's length (the admin's reason form uses it too).
REASON_MAX = CellTransition._meta.get_field("reason").max_length


@dataclass(frozen=True)
class Move:
    sources: frozenset[str]
    target: str
    #: The named permission a person needs; None: the system or the cell's operator.
    permission: str | None


MOVES: dict[str, Move] = {
    "start_review": Move(frozenset({S.APPLIED}), S.UNDER_REVIEW, "zerowaste.review_cell"),
    "open_notice": Move(frozenset({S.UNDER_REVIEW}), S.IN_NOTICE, "zerowaste.review_cell"),
    "reject": Move(frozenset({S.APPLIED, S.UNDER_REVIEW}), S.REJECTED, "zerowaste.review_cell"),
    # An objection that holds sends the cell back to its assessor.
    "reconsider": Move(frozenset({S.IN_NOTICE}), S.UNDER_REVIEW, "zerowaste.review_cell"),
    "certify": Move(frozenset({S.IN_NOTICE}), S.CERTIFIED, "zerowaste.certify_cell"),
    "renew": Move(frozenset({S.CERTIFIED}), S.CERTIFIED, "zerowaste.certify_cell"),
    "suspend": Move(frozenset({S.CERTIFIED}), S.SUSPENDED, "zerowaste.sanction_cell"),
    "reinstate": Move(frozenset({S.SUSPENDED}), S.CERTIFIED, "zerowaste.sanction_cell"),
    "revoke": Move(
        frozenset({S.IN_NOTICE, S.CERTIFIED, S.SUSPENDED}), S.REVOKED, "zerowaste.sanction_cell"
    ),
    "expire": Move(frozenset({S.CERTIFIED, S.SUSPENDED}), S.EXPIRED, None),
    "reapply": Move(frozenset({S.EXPIRED, S.REJECTED}), S.APPLIED, None),
    # Not a change of status, recorded all the same: the operator asks to be renewed.
    "request_renewal": Move(frozenset({S.CERTIFIED}), S.CERTIFIED, None),
}


def notice_period() -> timedelta:
    return timedelta(days=settings.ZEROWASTE_NOTICE_DAYS)


def renewal_window() -> timedelta:
    return timedelta(days=settings.ZEROWASTE_RENEWAL_WINDOW_DAYS)


def _refuse(cell: Cell, action: str, message: str, **details) -> CellTransitionNotAllowed:
    return CellTransitionNotAllowed(
        message, details={"status": cell.status, "action": action, **details}
    )


def _check(cell: Cell, action: str, move: Move, now: datetime) -> None:
    if cell.status not in move.sources:
        raise _refuse(
            cell,
            action,
            _("A cell that is %(status)s cannot be moved this way (%(action)s).")
            % {"status": CellStatus(cell.status).label, "action": action},
            allowed_from=sorted(move.sources),
        )
    if action == "certify" and now < cell.notice_ends_at:
        raise _refuse(
            cell,
            action,
            _("The public notice period has not ended yet."),
            notice_ends_at=cell.notice_ends_at.isoformat(),
        )
    if action in ("renew", "request_renewal") and cell.expires_at - now > renewal_window():
        raise _refuse(
            cell,
            action,
            _("A certificate can be renewed only in the %(days)d days before it expires.")
            % {"days": settings.ZEROWASTE_RENEWAL_WINDOW_DAYS},
            expires_at=cell.expires_at.isoformat(),
        )
    if action == "reinstate" and cell.expires_at <= now:
        raise _refuse(cell, action, _("The certificate has expired meanwhile."))
    if action == "expire" and cell.expires_at > now:
        raise _refuse(cell, action, _("The certificate has not expired."))


def _apply(cell: Cell, action: str, move: Move, now: datetime) -> list[str]:
    fields = ["status", "status_changed_at"]
    if action == "open_notice":
        cell.notice_ends_at = now + notice_period()
        fields.append("notice_ends_at")
    elif action == "certify":
        cell.certified_at, cell.expires_at = now, now + validity_for(cell.kind)
        fields += ["certified_at", "expires_at"]
    elif action == "renew":
        # From the old expiry, so renewing early loses no days.
        cell.expires_at = max(cell.expires_at, now) + validity_for(cell.kind)
        cell.renewal_requested_at = None
        fields += ["expires_at", "renewal_requested_at"]
    elif action == "request_renewal":
        cell.renewal_requested_at = now
        fields.append("renewal_requested_at")
    elif action in ("reconsider", "reapply"):
        cell.notice_ends_at = None
        fields.append("notice_ends_at")
    if move.target != cell.status:
        cell.status_changed_at = now
    cell.status = move.target
    return fields


def cell_transition(
    *,
    cell_id: int,
    action: str,
    actor: User | None,
    reason: str,
    now: datetime | None = None,
    as_operator: bool = False,
) -> Cell:
    """Move a cell by `action`, recording `actor` and `reason`. `actor` None is the system
    (the expiry job); `as_operator` is the cell's operator acting through the API (the
    caller has checked they operate it). A person needs the move's named permission."""
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(_("Say why (a reason is required)."), details={"field": "reason"})
    reason = reason[:REASON_MAX]
    move = MOVES.get(action)
    if move is None:
        raise CellTransitionNotAllowed(
            _("No such lifecycle move: %(action)s.") % {"action": action},
            details={"action": action, "moves": sorted(MOVES)},
        )
    if actor is not None and not as_operator:
        if move.permission is None or not actor.has_perm(move.permission):
            raise DomainError(code=ErrorCode.PERMISSION_DENIED)
    elif as_operator and move.permission is not None:
        raise DomainError(code=ErrorCode.PERMISSION_DENIED)
    now = now or timezone.now()
    with transaction.atomic():
        cell = Cell.objects.select_for_update().filter(pk=cell_id).first()
        if cell is None:
            raise CellNotFound()
        _check(cell, action, move, now)
        before = cell.status
        fields = _apply(cell, action, move, now)
        cell.save(update_fields=fields)
        CellTransition.objects.create(
            cell=cell,
            action=action,
            from_status=before,
            to_status=cell.status,
            actor=actor,
            reason=reason,
        )
    return cell


def cells_expire(*, now: datetime | None = None) -> int:
    """Certificates past their date become expired (the periodic job); returns how many."""
    now = now or timezone.now()
    done = 0
    due = Cell.objects.filter(
        status__in=[S.CERTIFIED, S.SUSPENDED], expires_at__lte=now
    ).values_list("pk", flat=True)
    for cell_id in list(due):
        try:
            cell_transition(
                cell_id=cell_id,
                action="expire",
                actor=None,
                reason="The certificate reached its expiry date without renewal.",
                now=now,
            )
            done += 1
        except CellTransitionNotAllowed:  # renewed or revoked meanwhile
            continue
    return done


def cells_remind(*, now: datetime | None = None) -> int:
    """Renewal reminders to the operators of certificates that expire within each of
    settings.ZEROWASTE_REMINDER_DAYS days; each threshold once per certificate. Returns the
    number of reminders recorded."""
    now = now or timezone.now()
    sent = 0
    for days in sorted(settings.ZEROWASTE_REMINDER_DAYS, reverse=True):
        due = Cell.objects.filter(
            status=S.CERTIFIED,
            renewal_requested_at__isnull=True,
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=days),
        ).prefetch_related("operators__user")
        for cell in due:
            # A cell inside a shorter threshold already gets that one.
            if any(
                cell.expires_at - now <= timedelta(days=d)
                for d in settings.ZEROWASTE_REMINDER_DAYS
                if d < days
            ):
                continue
            _reminder, created = CellReminder.objects.get_or_create(
                cell=cell, expires_at=cell.expires_at, days_before=days
            )
            if not created:
                continue
            sent += 1
            emails = [op.user.email for op in cell.operators.all() if op.user.is_active]
            if emails:
                # Recorded first: a mail server that is down costs a mail, never a resend loop.
                send_mail(
                    _("Your zero-waste certificate expires soon"),
                    _(
                        "The certificate of %(cell)s expires on %(date)s. Apply for renewal "
                        "in the app before then."
                    )
                    % {"cell": cell.name, "date": f"{cell.expires_at:%Y-%m-%d}"},
                    None,
                    emails,
                    fail_silently=True,
                )
    return sent
