"""Residents' API sessions: the token pair a login starts, refresh-token rotation, and the
reuse detection that ends a whole session when a rotated refresh token comes back.

A login starts a *token family*: its refresh token carries a `fam` claim that every token
rotated from it keeps. Rotating blacklists the presented token and issues its successor.
Presenting a token that was already rotated means two parties hold the family (a stolen
token, or a client that refreshed twice); as in OAuth's refresh-token reuse detection, the
presenter is refused and every live token of the family is revoked, including the one the
first rotation handed out. Other logins (other devices) of the same resident go on.

Rotation is serialised per resident by a row lock on the user, so of N concurrent
refreshes of one token exactly one rotates; the others are reuses and end the family.

Also here: what a failed login is counted against (the account, the client address) for
django-axes' lockouts.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext  # not `_`: a throwaway name here
from rest_framework.throttling import BaseThrottle
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from carbon.models import User

FAMILY_CLAIM = "fam"


class RefreshRefused(Exception):
    """The refresh token can't be used; `reason` is a stable code for the API."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        self.message = message
        super().__init__(message)


class _FamilyRefreshToken(RefreshToken):
    """Signature, expiry and type are checked on decoding; whether a blacklisted token is
    a plain refusal or a reuse is session_refresh's decision, made under the lock."""

    def check_blacklist(self) -> None:
        return None


def _outstand(*, token: RefreshToken, user: User) -> None:
    OutstandingToken.objects.create(
        user=user,
        jti=token[api_settings.JTI_CLAIM],
        token=str(token),
        created_at=token.current_time,
        expires_at=datetime_from_epoch(token["exp"]),
    )


@transaction.atomic
def session_start(*, user: User) -> RefreshToken:
    """A new token family for a resident who just proved their password."""
    token = _FamilyRefreshToken()
    token[api_settings.USER_ID_CLAIM] = str(getattr(user, api_settings.USER_ID_FIELD))
    token[FAMILY_CLAIM] = uuid.uuid4().hex
    _outstand(token=token, user=user)
    return token


def _family_revoke(*, user: User, family: str) -> int:
    """Blacklist every live refresh token of `family`. With rotation there is about one
    live token per family, so reading the resident's few live tokens is cheap."""
    revoked = 0
    live = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    for outstanding in live:
        payload: dict[str, Any] = token_backend.decode(outstanding.token, verify=False)
        member_of = payload.get(FAMILY_CLAIM) or payload.get(api_settings.JTI_CLAIM)
        if member_of == family:
            BlacklistedToken.objects.get_or_create(token=outstanding)
            revoked += 1
    return revoked


def session_refresh(*, refresh: str) -> RefreshToken:
    """Rotate `refresh`: its successor (whose `.access_token` is the new access token).

    Raises RefreshRefused: `token_not_valid` (bad signature, expired, not a refresh token),
    `no_active_account` (erased or deactivated), `token_reused` (already rotated or revoked:
    the whole family is revoked now, and the resident logs in again).
    """
    try:
        token = _FamilyRefreshToken(refresh)
    except TokenError as exc:
        raise RefreshRefused("token_not_valid", str(exc)) from None
    jti = token[api_settings.JTI_CLAIM]
    # Tokens issued before families existed start one on their first rotation.
    family = token.get(FAMILY_CLAIM) or jti
    reused = False
    with transaction.atomic():
        user = (
            User.objects.select_for_update()
            .filter(**{api_settings.USER_ID_FIELD: token.get(api_settings.USER_ID_CLAIM)})
            .first()
        )
        if user is None or not api_settings.USER_AUTHENTICATION_RULE(user):
            raise RefreshRefused(
                "no_active_account", gettext("No active account found for this token.")
            )
        outstanding, _ = OutstandingToken.objects.get_or_create(
            jti=jti,
            defaults={
                "user": user,
                "token": refresh,
                "created_at": token.current_time,
                "expires_at": datetime_from_epoch(token["exp"]),
            },
        )
        if BlacklistedToken.objects.filter(token=outstanding).exists():
            _family_revoke(user=user, family=family)
            reused = True
        else:
            BlacklistedToken.objects.create(token=outstanding)
            token.set_jti()
            token.set_exp()
            token.set_iat()
            token[FAMILY_CLAIM] = family
            _outstand(token=token, user=user)
    if reused:
        # Raised after the commit: the revocation must stay.
        raise RefreshRefused(
            "token_reused",
            gettext(
                "This refresh token was already used. Every session it belongs to has ended; "
                "log in again."
            ),
        )
    return token


def login_client_address(request) -> str:
    """The client a failed login is counted against: the address DRF's throttles use, so
    one NUM_PROXIES setting serves both (X-Forwarded-For is trusted only that deep)."""
    return BaseThrottle().get_ident(request)


def login_account_key(request, credentials: dict | None) -> str | None:
    """The account a failed login is counted against: the email, however it was typed. The
    API sends it as `email`, the admin's login form as `username`."""
    value = (credentials or {}).get("email") or (credentials or {}).get("username")
    if not value:
        # Asked before the credentials are known (a locked-out request): read the form.
        data = getattr(request, "data", None) or getattr(request, "POST", None) or {}
        if hasattr(data, "get"):
            value = data.get("email") or data.get("username")
    if not isinstance(value, str) or not value:
        return None
    return User.objects.normalize_email(value.strip()).lower()
