"""The core's personal data, as providers for carbon.personal_data: profile, balance,
consents, claims, appeals, penalty box, ledger, login tokens and the admin log.
carbon/apps.py registers them; the adapter slices and the feature apps register their own."""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from carbon.models import (
    Account,
    Appeal,
    Claim,
    Consent,
    Lot,
    LotAllocation,
    PenaltyBox,
    Transfer,
    User,
)
from carbon.personal_data import PersonalData
from carbon.services.ledger import (
    balance_for_user,
    hold_status,
    ledger_entries_for_user,
    signed_amount,
)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


# --- profile --------------------------------------------------------------------------------


def profile_export(*, user: User) -> dict[str, Any]:
    return {
        "id": str(user.public_id),
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "community": user.community.code if user.community_id else None,
        "district": user.district.code if user.district_id else None,
        "date_joined": user.date_joined.isoformat(),
    }


def profile_erase(*, user: User) -> None:
    """Nothing here: user_erase anonymises the user row itself, once every other eraser has
    run, because they find the resident's rows through it (and its `erased_at` is what
    makes erasure run once)."""


# --- balance and ledger ---------------------------------------------------------------------


def balance_export(*, user: User) -> dict[str, int]:
    balance = balance_for_user(user=user)
    return {
        "available_g": balance.available_g,
        "pending_g": balance.pending_g,
        "lifetime_g": balance.lifetime_g,
    }


def balance_erase(*, user: User) -> None:
    """Nothing: the resident's ledger account stays, its counters must keep matching its
    transfers, and once the user row is anonymised the account belongs to nobody known."""


def ledger_export(*, user: User) -> list[dict[str, Any]]:
    entries, account = ledger_entries_for_user(user=user)
    return [
        {
            "id": t.pk,
            "at": t.created_at.isoformat(),
            "code": t.code,
            "status": hold_status(t),
            "amount_g": signed_amount(t, account_id=account.pk),
            "description": t.description,
        }
        for t in entries.order_by("created_at", "id")
    ]


def ledger_erase(*, user: User) -> None:
    """Nothing: transfers, lots and allocations are immutable and must keep balancing
    (`manage.py ledger_check`). They hold amounts, codes, categories and the service's
    descriptions ("Metro ride: 5 km", or a reversal's reason), and refer to the resident only through the ledger
    account, which user_erase leaves tied to an anonymised user row: the ledger keeps
    anonymous entries. (Transfers made *by* a staff member keep pointing at their account
    the same way.)"""


# --- consents -------------------------------------------------------------------------------


def consents_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "scope": c.scope,
            "granted_at": c.granted_at.isoformat(),
            "revoked_at": _iso(c.revoked_at),
        }
        for c in user.consents.order_by("granted_at")
    ]


def consents_erase(*, user: User) -> None:
    """Close the current grants. The grants stay (scope and dates only) as the record of
    what allowed the crediting the ledger still shows."""
    Consent.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


# --- claims ---------------------------------------------------------------------------------


def claims_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "id": str(c.id),
            "behaviour": c.behaviour.code,
            "quantity": str(c.quantity),
            "occurred_at": c.occurred_at.isoformat(),
            "status": c.status,
            "credited_g": c.credited_g,
            "evidence_type": c.evidence_type,
            "evidence": c.evidence,
            "receipt": c.receipt,
        }
        for c in Claim.objects.owned_by(user).select_related("behaviour").order_by("submitted_at")
    ]


# Receipt entries that quote the evidence or a person: a trip's stations and route, a photo's
# capture time, the verdict's wording, a reviewer's note.
_RECEIPT_PERSONAL = frozenset({"facts", "reason", "note"})


def _receipt_scrubbed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _receipt_scrubbed(v) for k, v in value.items() if k not in _RECEIPT_PERSONAL}
    if isinstance(value, list):
        return [_receipt_scrubbed(v) for v in value]
    return value


def claims_erase(*, user: User) -> None:
    """Claims keep behaviour, quantity, times, status and amounts (the ledger refers to them)
    but lose their evidence, the reviewer's note, and what the receipt quoted of them; the
    receipt keeps the rules' arithmetic and codes."""
    claims = list(Claim.objects.filter(user=user).only("id", "receipt"))
    for claim in claims:
        claim.evidence, claim.review_note = {}, ""
        claim.receipt = _receipt_scrubbed(claim.receipt)
    Claim.objects.bulk_update(claims, ["evidence", "review_note", "receipt"], batch_size=500)


# --- appeals --------------------------------------------------------------------------------


def appeals_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "claim": str(a.claim_id),
            "kind": a.kind,
            "reason": a.reason,
            "status": a.status,
            "created_at": a.created_at.isoformat(),
            "credited_g": a.credited_g,
            "outcome_code": a.outcome_code,
            "outcome_reason": a.outcome_reason,
        }
        for a in user.appeals.order_by("created_at")
    ]


def appeals_erase(*, user: User) -> None:
    """The resident's words and the reviewer's answer (the note, and the outcome's reason,
    which may quote it) go; the appeal's kind, status, dates, grams and outcome code stay
    with the claim they were about."""
    Appeal.objects.filter(user=user).update(reason="", decision_note="", outcome_reason="")


# --- penalty box ----------------------------------------------------------------------------


def penalty_box_export(*, user: User) -> dict[str, Any] | None:
    box = PenaltyBox.objects.filter(user=user).first()
    if box is None:
        return None
    return {
        "level": box.level,
        "until": box.until.isoformat(),
        "last_triggered_at": box.last_triggered_at.isoformat(),
    }


def penalty_box_erase(*, user: User) -> None:
    """An erased account can claim nothing more, so its anti-fraud state has no use left."""
    PenaltyBox.objects.filter(user=user).delete()


# --- login tokens ---------------------------------------------------------------------------


def login_tokens_export(*, user: User) -> list[dict[str, Any]]:
    """When each refresh token was issued and whether it still works; never the token or its
    id, which are credentials."""
    return [
        {
            "issued_at": _iso(t.created_at),
            "expires_at": t.expires_at.isoformat(),
            "revoked": hasattr(t, "blacklistedtoken"),
        }
        for t in OutstandingToken.objects.filter(user=user)
        .select_related("blacklistedtoken")
        .order_by("created_at", "id")
    ]


def login_tokens_erase(*, user: User) -> None:
    """Every refresh token stops working. The rows stay until they expire (simplejwt's
    `flushexpiredtokens` removes them), because the blacklist is how a token is refused."""
    for token in OutstandingToken.objects.filter(user=user):
        BlacklistedToken.objects.get_or_create(token=token)


# --- failed logins and lockouts (django-axes) -----------------------------------------------

_LOGIN_RECORDS = (AccessAttempt, AccessFailureLog, AccessLog)


def login_attempts_export(*, user: User) -> list[dict[str, Any]]:
    """Logins and failed logins recorded under the resident's address, and from where."""
    rows = []
    for model in _LOGIN_RECORDS:
        for r in model.objects.filter(username__iexact=user.email).order_by("attempt_time"):
            rows.append(
                {
                    "kind": model._meta.model_name,
                    "at": _iso(r.attempt_time),
                    "ip_address": r.ip_address,
                    "user_agent": r.user_agent,
                }
            )
    return rows


def login_attempts_erase(*, user: User) -> None:
    """The records name the account by its address (no foreign key): they go, which also
    lifts any lockout of an account that no longer exists."""
    for model in _LOGIN_RECORDS:
        model.objects.filter(username__iexact=user.email).delete()


# --- the admin's log ------------------------------------------------------------------------

_ACTIONS = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}


def admin_log_export(*, user: User) -> list[dict[str, Any]]:
    """What this person did in the admin (staff only; a resident has nothing here)."""
    return [
        {
            "at": e.action_time.isoformat(),
            "action": _ACTIONS.get(e.action_flag, str(e.action_flag)),
            "object_type": f"{e.content_type.app_label}.{e.content_type.model}"
            if e.content_type_id
            else None,
            "object": e.object_repr,
        }
        for e in LogEntry.objects.filter(user=user)
        .select_related("content_type")
        .order_by("action_time", "id")
    ]


def admin_log_erase(*, user: User) -> None:
    """The admin log is staff's audit trail: what a staff member did stays, pointing at
    their now anonymous account. What it recorded about this person goes: entries about
    their user row named them (a user shows as its name or email address)."""
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(User), object_id=str(user.pk)
    ).update(object_repr="(erased)")


PROVIDERS = (
    PersonalData("profile", (User,), profile_export, profile_erase),
    PersonalData("balance", (Account,), balance_export, balance_erase),
    PersonalData("consents", (Consent,), consents_export, consents_erase),
    PersonalData("claims", (Claim,), claims_export, claims_erase),
    PersonalData("appeals", (Appeal,), appeals_export, appeals_erase),
    PersonalData("penalty_box", (PenaltyBox,), penalty_box_export, penalty_box_erase),
    PersonalData("ledger", (Transfer, Lot, LotAllocation), ledger_export, ledger_erase),
    PersonalData(
        "login_tokens",
        (OutstandingToken, BlacklistedToken),
        login_tokens_export,
        login_tokens_erase,
    ),
    PersonalData("login_attempts", _LOGIN_RECORDS, login_attempts_export, login_attempts_erase),
    PersonalData("admin_log", (LogEntry,), admin_log_export, admin_log_erase),
)
"""The core's providers, in the order their sections appear in an export."""
