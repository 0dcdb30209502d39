"""Partners and their credentials: creation, rotation, and request signature checks."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from carbon.errors import InvalidSignature, ReplayedRequest
from carbon.models import Partner, PartnerCredential, PartnerRequestNonce


def _fernet() -> MultiFernet:
    """PARTNER_SECRETS_KEY lists Fernet keys: the first encrypts, every one decrypts, so a new
    key goes first and the old one stays until credentials were re-issued. Never derived from
    another secret: settings refuse to start without a real key (config.secret_keys)."""
    keys = [k.strip() for k in settings.PARTNER_SECRETS_KEY.split(",") if k.strip()]
    return MultiFernet([Fernet(k) for k in keys])


@dataclass(frozen=True)
class IssuedCredential:
    """Returned once at creation; the secret is not retrievable afterwards."""

    partner: Partner
    key_id: str
    secret: str


def _issue(partner: Partner) -> IssuedCredential:
    key_id = f"pk_{secrets.token_hex(12)}"
    secret = secrets.token_urlsafe(32)
    PartnerCredential.objects.create(
        partner=partner, key_id=key_id, secret_encrypted=_fernet().encrypt(secret.encode())
    )
    return IssuedCredential(partner=partner, key_id=key_id, secret=secret)


@transaction.atomic
def partner_create(*, name: str, kind: str) -> IssuedCredential:
    if kind not in Partner.Kind.values:
        raise ValueError(f"unknown partner kind {kind!r}; one of {Partner.Kind.values}")
    partner = Partner.objects.create(name=name, kind=kind)
    return _issue(partner)


@transaction.atomic
def partner_credential_rotate(
    *, partner: Partner, keep_old_for: timedelta | None = None
) -> IssuedCredential:
    """Issue a new key and revoke the old ones (now, or after a grace period)."""
    revoke_at = timezone.now() + (keep_old_for or timedelta(0))
    # Keys still inside an earlier grace period end no later than this rotation says.
    PartnerCredential.objects.filter(partner=partner).filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gt=revoke_at)
    ).update(revoked_at=revoke_at)
    return _issue(partner)


def hmac_hex(*, key: str, message: bytes) -> str:
    """Hex HMAC-SHA256: request signatures, and the keyed hashes that stand in for card
    numbers and partner account ids."""
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    """The signature a partner sends: hex HMAC-SHA256 over "{timestamp}.{raw body}"."""
    return hmac_hex(key=secret, message=timestamp.encode() + b"." + body)


# Unix seconds as plain ASCII digits. int() alone would take "٣", " 17e8 ", "+5", "-0" and
# 10**400 (which then overflows the float comparison): a timestamp is checked as text first.
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
# Key ids are printable ASCII (we issue "pk_" + 24 hex); anything else never reaches the query.
_KEY_ID = re.compile(r"[!-~]{1,64}")


def partner_request_verify(*, key_id: str, timestamp: str, signature: str, body: bytes) -> Partner:
    """Authenticate a signed partner request, refusing stale, forged and replayed ones."""
    if not key_id or not timestamp or not signature:
        raise InvalidSignature(_("X-Partner-Key, X-Timestamp and X-Signature are required."))
    if len(signature) != 64 or any(c not in "0123456789abcdefABCDEF" for c in signature):
        raise InvalidSignature(_("X-Signature is 64 hex characters."))
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise InvalidSignature(_("X-Timestamp must be Unix seconds, in ASCII digits."))
    if not _KEY_ID.fullmatch(key_id):
        raise InvalidSignature()
    ts = int(timestamp)
    if abs(time.time() - ts) > settings.PARTNER_SIGNATURE_TOLERANCE_SECONDS:
        raise InvalidSignature(_("The request timestamp is outside the allowed window."))
    now = timezone.now()
    credential = (
        PartnerCredential.objects.usable().select_related("partner").filter(key_id=key_id).first()
    )
    if credential is None or (credential.revoked_at is not None and credential.revoked_at <= now):
        raise InvalidSignature()
    try:
        secret = _fernet().decrypt(bytes(credential.secret_encrypted)).decode()
    except InvalidToken:
        raise InvalidSignature() from None
    expected = sign(secret=secret, timestamp=timestamp, body=body)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise InvalidSignature()
    try:
        with transaction.atomic():
            PartnerRequestNonce.objects.create(credential=credential, signature=expected)
    except IntegrityError:
        raise ReplayedRequest() from None
    PartnerCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
    return credential.partner


def partner_signing_secret(*, partner: Partner) -> tuple[str, str]:
    """The key id and secret of the partner's newest usable credential: what we sign our own
    requests to the partner with (the same HMAC scheme both ways)."""
    credential = (
        PartnerCredential.objects.usable()
        .filter(partner=partner)
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=timezone.now()))
        # A key in its rotation grace period signs only while no newer one exists.
        .order_by(F("revoked_at").desc(nulls_first=True), "-created_at")
        .first()
    )
    if credential is None:
        raise PartnerCredential.DoesNotExist(f"partner {partner.pk} has no usable credential")
    return credential.key_id, _fernet().decrypt(bytes(credential.secret_encrypted)).decode()


def partner_nonces_purge(*, older_than: timedelta | None = None) -> int:
    """Nonces older than twice the tolerance can never be replayed (the timestamp is stale)."""
    cutoff = timezone.now() - (
        older_than or timedelta(seconds=2 * settings.PARTNER_SIGNATURE_TOLERANCE_SECONDS)
    )
    deleted, _ = PartnerRequestNonce.objects.filter(seen_at__lt=cutoff).delete()
    return deleted
