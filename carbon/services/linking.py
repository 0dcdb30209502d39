"""Proof of control for residents' links to outside accounts (a transit card, an account at a
partner platform), the one protocol both slices follow:

1. the resident asks to link an account: the link is *pending*, earns nothing, and carries a
   random `link_token` the resident can take to the partner;
2. it becomes *confirmed* either when the partner confirms it server to server (a signed
   request naming the link token and the partner's own id of its customer), or when the
   resident enters the one-time code the partner fetched from us (a signed request naming
   its customer) and showed that customer in its own app or on the card's statement;
3. confirming ends every other link of the same account (other residents' pending links are
   void, an older confirmed link is superseded): the proof says who holds the account now.

The slices (carbon.adapters.transit.cards, carbon.adapters.partner_events.links) say which
account a link names and credit what it earned before; the state changes live here, once.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from carbon.errors import DomainError, ErrorCode
from carbon.models import User
from carbon.models.linking import LinkStatus, LinkVia, ProvenLink
from carbon.services.residents import resident_require

L = TypeVar("L", bound=ProvenLink)

# No 0/O or 1/I/L: a token may be read out or typed into the partner's app by hand.
TOKEN_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
TOKEN_LENGTH = 12  # about 59 bits: never guessed, and only partners can use one anyway
CODE_DIGITS = 6


class LinkNotFound(DomainError):
    code = ErrorCode.NOT_FOUND
    default_message = _("No such link among yours.")


class TooManyPendingLinks(DomainError):
    code = ErrorCode.TOO_MANY_PENDING_LINKS
    default_message = _(
        "You have too many links waiting for confirmation: confirm or cancel one first."
    )


class LinkLocked(DomainError):
    code = ErrorCode.LINK_LOCKED
    default_message = _(
        "Too many wrong codes were entered for this account: you can ask to link it again "
        "once that request would have expired."
    )


class LinkVoid(DomainError):
    code = ErrorCode.LINK_VOID
    default_message = _("This link request is void; start a new one.")


class InvalidLinkCode(DomainError):
    code = ErrorCode.INVALID_LINK_CODE
    default_message = _("This is not the code the partner showed for this link.")


class NoLinkCode(DomainError):
    code = ErrorCode.NO_LINK_CODE
    default_message = _(
        "No code is waiting for this link (none was asked for, or it expired): open the "
        "partner's app or statement to get a new one."
    )


class UnknownLinkToken(DomainError):
    code = ErrorCode.UNKNOWN_LINK_TOKEN
    default_message = _("No link request of yours has this token.")


class LinkRefMismatch(DomainError):
    code = ErrorCode.LINK_REF_MISMATCH
    default_message = _(
        "This link request names another account than the one you sent: the resident asked "
        "to link someone else's account."
    )


class NoPendingLink(DomainError):
    code = ErrorCode.NO_PENDING_LINK
    default_message = _("No resident is waiting to link this account.")


VOID_MESSAGES = {
    "expired": _("This link request expired before it was confirmed; start a new one."),
    "attempts_exhausted": _("Too many wrong codes: this link request is void; start a new one."),
    "superseded": _("The account was linked with proof by someone else; this request is void."),
    "cancelled": _("This link request was cancelled."),
}


def _void(reason: str) -> LinkVoid:
    return LinkVoid(VOID_MESSAGES.get(reason), details={"reason": reason or "void"})


def link_token_new() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def _code_hash(link: ProvenLink, code: str) -> str:
    # Keyed (SECRET_KEY) and bound to the link: a copy of the table does not give the codes
    # away to a million guesses.
    message = f"{link._meta.label}:{link.pk}:{code}"
    return salted_hmac("carbon.link-code", message, algorithm="sha256").hexdigest()


def link_request(
    *,
    model: type[L],
    user: User,
    account: dict[str, Any],
    fields: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[L, bool]:
    """Start the resident's link to an account (pending), or return their current one
    (confirmed, or still pending). Returns (link, created).

    Another resident's link to the account is neither revealed nor in the way: only a
    proof of control decides who holds the account. Only residents link (NotAResident): a
    staff account's card or partner account would be credited by the feeds otherwise.
    """
    resident_require(user=user)
    now = now or timezone.now()
    with transaction.atomic():
        # A resident's link attempts one at a time, so the cap on open pending links holds.
        User.objects.select_for_update().filter(pk=user.pk).first()
        mine = model.objects.filter(user=user, unlinked_at__isnull=True, **account)
        linked = mine.linked().first()
        if linked is not None:
            return linked, False
        pending = mine.filter(status=LinkStatus.PENDING).first()
        if pending is not None:
            if pending.expires_at and pending.expires_at > now:
                return pending, False
            _end(pending, reason="expired", now=now)
        # A new request must not bring a fresh set of guesses: after too many wrong codes
        # the account stays locked for this resident until that request would have expired.
        locked = (
            model.objects.filter(
                user=user, end_reason="attempts_exhausted", expires_at__gt=now, **account
            )
            .order_by("-expires_at")
            .first()
        )
        if locked is not None:
            raise LinkLocked(details={"until": locked.expires_at.isoformat()})
        open_pending = model.objects.filter(user=user).open_pending(now=now).count()
        if open_pending >= settings.CARBON_LINK_MAX_PENDING:
            raise TooManyPendingLinks(details={"max_pending": settings.CARBON_LINK_MAX_PENDING})
        link = model.objects.create(
            user=user,
            status=LinkStatus.PENDING,
            link_token=link_token_new(),
            expires_at=now + timedelta(hours=settings.CARBON_LINK_PENDING_HOURS),
            **account,
            **(fields or {}),
        )
        return link, True


@dataclass(frozen=True)
class IssuedLinkCode:
    code: str
    expires_at: datetime
    links: int  # pending links of the account the code confirms (any one of them)


def link_code_issue(*, pending: QuerySet, now: datetime | None = None) -> IssuedLinkCode:
    """A new one-time code for the open pending links of one account (the partner shows it to
    its own customer, the account's holder). Any earlier code of those links stops working;
    their wrong guesses keep counting."""
    now = now or timezone.now()
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    expires_at = now + timedelta(seconds=settings.CARBON_LINK_CODE_TTL_SECONDS)
    with transaction.atomic():
        rows = list(pending.open_pending(now=now).select_for_update().order_by("pk"))
        if not rows:
            raise NoPendingLink()
        for row in rows:
            row.code_hash, row.code_expires_at = _code_hash(row, code), expires_at
            row.save(update_fields=["code_hash", "code_expires_at"])
    return IssuedLinkCode(code=code, expires_at=expires_at, links=len(rows))


def link_confirm_by_partner(*, link: L, now: datetime | None = None) -> L:
    """The partner vouches that its customer holds the account (the caller checked that the
    signed request names this link's token and account)."""
    return _confirm(link=link, via=LinkVia.PARTNER, proof=lambda _: None, now=now)


def link_confirm_with_code(*, link: L, code: str, now: datetime | None = None) -> L:
    """The resident enters the one-time code the partner showed the account's holder. A
    wrong code counts; after CARBON_LINK_CODE_MAX_ATTEMPTS of them the link is void."""
    now = now or timezone.now()
    given = "".join(str(code or "").split())

    def proof(row: ProvenLink) -> DomainError | None:
        if not row.code_hash or row.code_expires_at is None or row.code_expires_at <= now:
            return NoLinkCode()
        if hmac.compare_digest(row.code_hash, _code_hash(row, given)):
            return None
        row.code_attempts += 1
        left = settings.CARBON_LINK_CODE_MAX_ATTEMPTS - row.code_attempts
        if left <= 0:
            _end(row, reason="attempts_exhausted", now=now, also=["code_attempts"])
            return _void("attempts_exhausted")
        row.save(update_fields=["code_attempts"])
        return InvalidLinkCode(details={"attempts_left": left})

    return _confirm(link=link, via=LinkVia.CODE, proof=proof, now=now)


def link_end(*, link: ProvenLink, now: datetime | None = None) -> None:
    """The resident cancels a pending link or unlinks a confirmed one."""
    now = now or timezone.now()
    with transaction.atomic():
        row = type(link).objects.select_for_update().filter(pk=link.pk).first()
        if row is None or row.unlinked_at is not None:
            raise LinkNotFound()
        row.unlinked_at = now
        row.end_reason = "unlinked" if row.status == LinkStatus.CONFIRMED else "cancelled"
        if row.status == LinkStatus.PENDING:
            row.status = LinkStatus.VOID
        row.save(update_fields=["unlinked_at", "end_reason", "status"])


def _end(row: ProvenLink, *, reason: str, now: datetime, also: list[str] | None = None) -> None:
    """A pending link that will never be confirmed: void, its code gone."""
    row.status, row.end_reason = LinkStatus.VOID, reason
    row.code_hash, row.code_expires_at = "", None
    row.save(update_fields=["status", "end_reason", "code_hash", "code_expires_at", *(also or [])])


def _confirm(
    *,
    link: L,
    via: str,
    proof: Callable[[ProvenLink], DomainError | None],
    now: datetime | None,
) -> L:
    now = now or timezone.now()
    model = type(link)
    failure: DomainError | None = None
    with transaction.atomic():
        # Every live link of the account, locked in one order, so two confirmations of the
        # same account (two residents, or the partner and a code) decide one after the other.
        rows = list(
            model.objects.select_for_update()
            .filter(unlinked_at__isnull=True, **link.account())
            .order_by("pk")
        )
        current = next((r for r in rows if r.pk == link.pk), None)
        if current is None:
            failure = _void("cancelled")
        elif current.status == LinkStatus.CONFIRMED:
            return current  # confirmed already: the same answer again
        elif current.status == LinkStatus.VOID:
            failure = _void(current.end_reason)
        elif current.expires_at is None or current.expires_at <= now:
            _end(current, reason="expired", now=now)
            failure = _void("expired")
        else:
            # A failed proof is written (a counted wrong code, a void link) and then raised,
            # outside this transaction so the write stays.
            failure = proof(current)
        if failure is None:
            assert current is not None
            for other in rows:
                if other.pk == current.pk:
                    continue
                if other.status == LinkStatus.CONFIRMED:
                    other.unlinked_at, other.end_reason = now, "superseded"
                    other.save(update_fields=["unlinked_at", "end_reason"])
                elif other.status == LinkStatus.PENDING:
                    _end(other, reason="superseded", now=now)
            current.status, current.confirmed_via, current.confirmed_at = (
                LinkStatus.CONFIRMED,
                via,
                now,
            )
            current.code_hash, current.code_expires_at = "", None
            current.save(
                update_fields=[
                    "status",
                    "confirmed_via",
                    "confirmed_at",
                    "code_hash",
                    "code_expires_at",
                ]
            )
            return current
    raise failure
