"""Appeals: a resident contests a refused claim (it goes back to the review queue) or reports
a credit that never came (a new claim for a reviewer). Reviewing the claim decides the
appeal (claims.claim_review)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext  # not `_`: a throwaway name here

from carbon.errors import DomainError, ErrorCode, IdempotencyConflict
from carbon.models import Appeal, Claim, ClaimStatus, User
from carbon.services.claims import claim_submit, history_entry, lock_resident
from carbon.services.residents import resident_require


class AppealNotAllowed(DomainError):
    code = ErrorCode.APPEAL_NOT_ALLOWED


class AppealLimitReached(DomainError):
    code = ErrorCode.APPEAL_LIMIT_REACHED


def _appeal_limit_check(*, user: User, now: datetime) -> None:
    """At most settings.CARBON_APPEALS_PER_DAY appeals (of both kinds) in any 24 hours: each
    puts a claim before a person. Retries of an appeal already made are not counted (they
    return it before this runs). Authoritative under the resident's lock."""
    limit = settings.CARBON_APPEALS_PER_DAY
    made = Appeal.objects.filter(user=user, created_at__gt=now - timedelta(days=1)).count()
    if made >= limit:
        raise AppealLimitReached(
            gettext("At most %(limit)d appeals in 24 hours; try again later.") % {"limit": limit},
            details={"per_day": limit},
        )


def _same_contest(existing: Appeal, *, claim_id: Any, reason: str, key: str) -> Appeal:
    if str(existing.claim_id) != str(claim_id) or existing.reason != reason:
        raise IdempotencyConflict(details={"idempotency_key": key})
    return existing


def appeal_contest(
    *, user: User, claim_id: Any, reason: str, idempotency_key: str
) -> tuple[Appeal, bool]:
    """Contest a refused claim: it goes back to the review queue with the resident's reason.

    Allowed within the behaviour's claim window after the refusal; once per refusal.
    Residents only (NotAResident).
    """
    resident_require(user=user)
    reason = (reason or "").strip()
    if not reason:
        raise AppealNotAllowed(gettext("Say why the claim should be credited."))
    existing = Appeal.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if existing is not None:
        return _same_contest(existing, claim_id=claim_id, reason=reason, key=idempotency_key), False
    with transaction.atomic():
        lock_resident(user=user)
        # A concurrent retry that waited for the lock finds the appeal its twin just made
        # (the claim is in review by then, which would otherwise read as "not refused").
        won = Appeal.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if won is not None:
            return _same_contest(won, claim_id=claim_id, reason=reason, key=idempotency_key), False
        claim = (
            Claim.objects.select_for_update()
            .select_related("behaviour")
            .get(pk=claim_id, user=user)
        )
        if claim.status != ClaimStatus.REJECTED:
            raise AppealNotAllowed(
                gettext("Only refused claims can be appealed; this one is %(status)s.")
                % {"status": claim.status}
            )
        now = timezone.now()
        decided = claim.decided_at or claim.submitted_at
        if now > decided + timedelta(days=claim.behaviour.claim_window_days):
            raise AppealNotAllowed(
                gettext("Appeals must be made within %(days)d days of the decision.")
                % {"days": claim.behaviour.claim_window_days}
            )
        _appeal_limit_check(user=user, now=now)
        appeal = Appeal.objects.create(
            user=user, claim=claim, kind="refused", reason=reason, idempotency_key=idempotency_key
        )
        claim.receipt = {
            **claim.receipt,
            "status": ClaimStatus.NEEDS_REVIEW,
            "code": "appealed",
            "reason": "Appealed by the resident; waiting for review.",
            "history": history_entry(
                claim, now, event="appeal", appeal=str(appeal.pk), note=reason
            ),
        }
        claim.status = ClaimStatus.NEEDS_REVIEW
        claim.decided_at = None
        claim.save()
        return appeal, True


def appeal_report_missed(
    *,
    user: User,
    behaviour_code: str,
    quantity: Any,
    occurred_at: datetime,
    reason: str,
    idempotency_key: str,
    files: Mapping[str, UploadedFile] | None = None,
) -> tuple[Appeal, bool]:
    """Report a credit that never came (a trip the card feed missed): a claim in the review
    queue, with a photo as evidence when given, credited retroactively when approved.
    Residents only (NotAResident)."""
    resident_require(user=user)
    reason = (reason or "").strip()
    if not reason:
        raise AppealNotAllowed(gettext("Say what was missed."))
    if not Appeal.objects.filter(user=user, idempotency_key=idempotency_key).exists():
        # Early, before the photo is inspected; checked again under the lock below.
        _appeal_limit_check(user=user, now=timezone.now())
    with transaction.atomic():
        # The claim's own idempotency compares the whole request (behaviour, quantity, time,
        # photo, reason): a retry returns it, a different request under the key conflicts.
        claim, _ = claim_submit(
            user=user,
            behaviour_code=behaviour_code,
            quantity=quantity,
            idempotency_key=f"appeal:{idempotency_key}",
            occurred_at=occurred_at,
            evidence_type="photo" if files else "self",
            files=files,
            force_review=f"Missed-credit appeal: {reason}"[:300],
        )
        # claim_submit took the resident's lock, held until this transaction ends: a
        # concurrent retry waited for it and finds the appeal here.
        existing = Appeal.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.claim_id != claim.pk:
                raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
            return existing, False
        _appeal_limit_check(user=user, now=timezone.now())
        appeal = Appeal.objects.create(
            user=user, claim=claim, kind="missed", reason=reason, idempotency_key=idempotency_key
        )
        return appeal, True
