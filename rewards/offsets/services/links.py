"""Residents' links to a mortgage at a programme's bank: asked for with consent, confirmed or
refused by the bank through a signed callback, revoked by the resident. The loan reference
is kept only as a keyed hash and its last four characters."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from carbon.models import Partner, User
from carbon.services.people import resident_lock
from carbon.services.residents import resident_require
from rewards.offsets.errors import (
    LoanConsentRequired,
    LoanLinkExists,
    LoanLinkNotFound,
    LoanLinkResolved,
    LoanReferenceInvalid,
    LoanReferenceMismatch,
    ProgrammeClosed,
    UnknownLoanLinkToken,
)
from rewards.offsets.models import OPEN_LINK_STATUSES, BankProgramme, LoanLink, LoanLinkStatus

# What the resident agrees to, stored with the link (English: a record, not a message).
CONSENT_TEXT = (
    "I agree that the programme's bank receives my carbon offsets, with my name as the bank "
    "knows it through this loan, and credits their value against this loan's interest."
)
_REFERENCE = re.compile(r"[A-Z0-9]{6,40}")


def _normalised(loan_reference: Any) -> str:
    if not isinstance(loan_reference, str):
        raise LoanReferenceInvalid()
    ref = re.sub(r"[\s\-]", "", loan_reference).upper()
    if not _REFERENCE.fullmatch(ref):
        raise LoanReferenceInvalid()
    return ref


def loan_reference_hash(*, bank: Partner, loan_reference: str) -> str:
    """A keyed hash, per bank: the reference cannot be recovered from the database, and the
    same loan number at two banks does not match."""
    message = f"loan:{bank.pk}:{_normalised(loan_reference)}".encode()
    return hmac.new(settings.PARTNER_REF_HASH_KEY.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class LoanLinked:
    link: LoanLink
    created: bool


def loan_link_create(
    *,
    user: User,
    programme: BankProgramme,
    loan_reference: str,
    consent: bool,
    now: datetime | None = None,
) -> LoanLinked:
    """Ask to link the resident's mortgage at the programme's bank. Pending until the bank
    confirms it (the resident gives the bank the link's token). Asking again with the same
    loan returns the open link; another loan while one is open is refused."""
    # The view refuses other roles; this is the defence for every other caller.
    resident_require(user=user)
    now = now or timezone.now()
    ref_hash = loan_reference_hash(bank=programme.bank, loan_reference=loan_reference)
    last4 = _normalised(loan_reference)[-4:]
    if consent is not True:
        raise LoanConsentRequired()
    if not BankProgramme.objects.open_at(now).filter(pk=programme.pk).exists():
        raise ProgrammeClosed()
    with transaction.atomic():
        resident_lock(user=user)  # never beside an erasure of this resident
        current = LoanLink.objects.filter(
            user=user, programme=programme, status__in=OPEN_LINK_STATUSES
        ).first()
        if current is not None:
            if current.loan_ref_hash == ref_hash:
                return LoanLinked(link=current, created=False)
            raise LoanLinkExists(details={"link": current.pk})
        try:
            with transaction.atomic():
                link = LoanLink.objects.create(
                    user=user,
                    programme=programme,
                    loan_ref_hash=ref_hash,
                    loan_ref_last4=last4,
                    link_token=secrets.token_hex(8).upper(),
                    consent_given_at=now,
                    consent_text=CONSENT_TEXT,
                )
        except IntegrityError:  # pragma: no cover - the resident lock serialises this
            raise LoanLinkExists() from None
    return LoanLinked(link=link, created=True)


def loan_links_of(*, user: User):
    return LoanLink.objects.filter(user=user).select_related("programme__bank")


def loan_link_revoke(*, user: User, link_id: int, now: datetime | None = None) -> LoanLink:
    """The resident ends a link (pending or confirmed): no new offsets go through it; those
    already requested stay with the bank."""
    with transaction.atomic():
        resident_lock(user=user)
        link = LoanLink.objects.select_for_update().filter(pk=link_id, user=user).first()
        if link is None:
            raise LoanLinkNotFound()
        if link.status in OPEN_LINK_STATUSES:
            link.status = LoanLinkStatus.REVOKED
            link.revoked_at = now or timezone.now()
            link.save(update_fields=["status", "revoked_at"])
    return link


def loan_link_decide(
    *,
    bank: Partner,
    link_token: str,
    loan_reference: str,
    confirmed: bool,
    bank_link_id: str = "",
    reason: str = "",
    now: datetime | None = None,
) -> LoanLink:
    """The bank confirms (with its own id for the link) or refuses a link request it was
    shown the token of, for the loan it names. Sending the same decision again answers the
    link as it is; a decision against an earlier one is refused."""
    token = link_token.strip().upper()
    link = (
        LoanLink.objects.filter(link_token=token, programme__bank=bank).first() if token else None
    )
    if link is None:
        raise UnknownLoanLinkToken()
    try:
        ref_hash = loan_reference_hash(bank=bank, loan_reference=loan_reference)
    except LoanReferenceInvalid:
        raise LoanReferenceMismatch() from None
    if not link.loan_ref_hash or not hmac.compare_digest(link.loan_ref_hash, ref_hash):
        raise LoanReferenceMismatch()
    wanted = LoanLinkStatus.CONFIRMED if confirmed else LoanLinkStatus.REFUSED
    with transaction.atomic():
        link = LoanLink.objects.select_for_update().get(pk=link.pk)
        if link.status == wanted:
            if confirmed and link.bank_link_id != bank_link_id:
                raise LoanLinkResolved(details={"status": link.status})
            return link
        if link.status != LoanLinkStatus.PENDING:
            raise LoanLinkResolved(details={"status": link.status})
        link.status = wanted
        link.decided_at = now or timezone.now()
        link.bank_link_id = bank_link_id if confirmed else ""
        link.refusal_reason = "" if confirmed else reason[:300]
        link.save(update_fields=["status", "decided_at", "bank_link_id", "refusal_reason"])
    return link
