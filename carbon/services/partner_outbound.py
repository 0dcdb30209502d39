"""Signed requests we send to a partner's endpoint: top-up orders to the transit operator,
offset batches to the bank.

Signed with the partner's newest credential in the scheme partners use towards us
(X-Partner-Key, X-Timestamp, X-Signature over "{timestamp}.{raw body}"), plus X-Request-Id:
our own id for the request, the same on every retry, so the partner can answer a retry with
its first answer instead of acting twice. Callers send from a worker, from an outbox row
written earlier, never inside a transaction: no database lock is held across the network.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from carbon.models import Partner, PartnerCredential
from carbon.services.partners import partner_signing_secret, sign

# The answer we read is small JSON; a partner that streams more is cut off.
MAX_REPLY_BYTES = 1024 * 1024


class PartnerUnreachable(Exception):
    """No usable answer: a network error, a timeout, a 5xx, a 429 or an unreadable body.

    The request may or may not have reached the partner: retry with the same request id.
    """


class PartnerNotConfigured(Exception):
    """The partner has no endpoint URL or no usable credential: retrying will not help until
    an operator fixes the partner's configuration."""


@dataclass(frozen=True)
class PartnerReply:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def partner_send(
    *,
    partner: Partner,
    path: str,
    payload: dict[str, Any],
    request_id: str,
    timeout: float | None = None,
) -> PartnerReply:
    """POST `payload` as JSON to the partner's endpoint + `path` and return its answer.

    A 2xx or 4xx with a JSON object body is an answer (the partner accepted or refused);
    anything else raises PartnerUnreachable, to be retried with the same request id.
    """
    if not partner.endpoint_url:
        raise PartnerNotConfigured(f"partner {partner.pk} has no endpoint URL")
    try:
        key_id, secret = partner_signing_secret(partner=partner)
    except PartnerCredential.DoesNotExist as exc:
        raise PartnerNotConfigured(str(exc)) from None
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-Partner-Key": key_id,
        "X-Timestamp": timestamp,
        "X-Signature": sign(secret=secret, timestamp=timestamp, body=body),
        "X-Request-Id": request_id,
    }
    url = partner.endpoint_url.rstrip("/") + "/" + path.lstrip("/")
    seconds = timeout if timeout is not None else settings.PARTNER_OUTBOUND_TIMEOUT_SECONDS
    try:
        with httpx.Client(timeout=seconds, follow_redirects=False) as client:
            with client.stream("POST", url, content=body, headers=headers) as response:
                raw = b""
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > MAX_REPLY_BYTES:
                        raise PartnerUnreachable(f"{url}: answer larger than {MAX_REPLY_BYTES}")
    except httpx.HTTPError as exc:
        raise PartnerUnreachable(f"{url}: {type(exc).__name__}: {exc}") from exc
    status = response.status_code
    # 2xx and 4xx (except 429) are the partner's decision; the rest says nothing yet.
    if status == 429 or not (200 <= status < 300 or 400 <= status < 500):
        raise PartnerUnreachable(f"{url}: HTTP {status}")
    try:
        data = json.loads(raw)
    except ValueError:
        raise PartnerUnreachable(f"{url}: HTTP {status} with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise PartnerUnreachable(f"{url}: HTTP {status} with a JSON body that is not an object")
    return PartnerReply(status=status, body=data)
