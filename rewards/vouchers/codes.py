"""A voucher's code and its QR payload.

The code is 12 characters drawn by `secrets` from an alphabet without look-alikes (no 0/O,
1/I/L, 2/Z, 5/S, 8/B): 25^12, about 2^55, so guessing one is hopeless, and a till clerk can
type it. The QR payload carries the code and the voucher's expiry, signed with HMAC under a
key derived from SECRET_KEY for this purpose only (django.core.signing with its own salt): a
forged, altered or expired payload is refused before any database look-up."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from django.core import signing
from django.utils import timezone
from django.utils.translation import gettext as _

from rewards.vouchers.errors import QrInvalid

ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 12
_SALT = "rewards.vouchers.qr"
_SEPARATORS = re.compile(r"[\s\-]")
# What a typed code may look like once spaces and dashes are dropped: anything else cannot
# be one of ours, and is answered as unknown without a query.
_CODE = re.compile(rf"[{ALPHABET}]{{{CODE_LENGTH}}}")


def voucher_code_new() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def voucher_code_normalise(raw: str) -> str | None:
    """The code as stored, from what a clerk typed (any case, spaces or dashes); None when it
    cannot be a code."""
    code = _SEPARATORS.sub("", raw or "").upper()
    return code if _CODE.fullmatch(code) else None


def voucher_qr_payload(*, code: str, expires_at: datetime) -> str:
    return signing.dumps({"c": code, "e": int(expires_at.timestamp())}, salt=_SALT)


def voucher_qr_verify(*, payload: str, now: datetime | None = None) -> str:
    """The code a QR payload carries, or QrInvalid: a bad signature, or an expired voucher's."""
    try:
        data = signing.loads(payload, salt=_SALT)
        code, expires = data["c"], int(data["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise QrInvalid(details={"reason": "signature"}) from None
    if not isinstance(code, str) or expires <= (now or timezone.now()).timestamp():
        raise QrInvalid(_("This QR code has expired."), details={"reason": "expired"}) from None
    return code
