"""Helpers for acting over the API in tests: authenticated clients and tokens, claim
payloads and receipts, the error envelope, signed partner requests, and a stand-in transit
verifier. Fixtures live in conftest.py, factories in factories.py."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from rest_framework.test import APIClient

from carbon.models import Claim, Transfer
from carbon.services.partners import sign
from carbon.verifiers import PreparedEvidence, Verdict

PASSWORD = "correct horse battery"  # what tests.carbon.factories.UserFactory sets


def new_key() -> str:
    return str(uuid.uuid4())


def client_for(user) -> APIClient:
    """A client logged in as `user`, without the token round trip."""
    client = APIClient()
    client.force_authenticate(user)
    return client


def obtain_tokens(email: str, password: str = PASSWORD) -> dict[str, str]:
    response = APIClient().post(
        "/api/v1/auth/token", {"email": email, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def claim_payload(behaviour: str, quantity: Any = 1, **extra: Any) -> dict[str, Any]:
    payload = {"behaviour": behaviour, "quantity": quantity, "idempotency_key": new_key()}
    payload.update(extra)
    return payload


def steps_of(claim_or_body: Claim | dict) -> dict[str, dict]:
    """A claim's receipt steps by name, from the claim or from its body over the API."""
    receipt = claim_or_body["receipt"] if isinstance(claim_or_body, dict) else claim_or_body.receipt
    return {s["step"]: s for s in receipt["steps"]}


def written() -> tuple[int, int]:
    """What a refused request must leave untouched."""
    return Claim.objects.count(), Transfer.objects.count()


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def signed_headers(
    *, key_id: str, secret: str, body: bytes = b"", timestamp: int | str | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "HTTP_X_PARTNER_KEY": key_id,
        "HTTP_X_TIMESTAMP": ts,
        "HTTP_X_SIGNATURE": sign(secret=secret, timestamp=ts, body=body),
    }


def partner_post(path: str, *, key_id: str, secret: str, payload: dict | None = None, **kw):
    body = json.dumps(payload or {}).encode()
    headers = signed_headers(key_id=key_id, secret=secret, body=body, **kw)
    return APIClient().generic("POST", path, body, content_type="application/json", **headers)


class TransitCardTestVerifier:
    """A stand-in transit-feed adapter: trusts the evidence, tier "transit" (needs consent)."""

    tier = "transit"
    accepts_from_resident = True

    def prepare(self, *, user: Any, evidence: dict[str, Any], files: Any) -> PreparedEvidence:
        return PreparedEvidence(evidence={k: v for k, v in evidence.items() if k != "type"})

    def verify(self, *, claim, prepared: PreparedEvidence) -> Verdict:
        return Verdict(outcome="verified", code="tap_matched", reason="Matched a card tap.")


def credited_in_bulk(monkeypatch, module) -> list[Claim]:
    """The claims `module` (a feed's caller of claims_credit_feed_many) credits through the
    set-based path from now on, in order: the real function, watched (nothing mocked)."""
    from carbon.services.claims_bulk import claims_credit_feed_many

    credited: list[Claim] = []

    def watched(**kw):
        claims = claims_credit_feed_many(**kw)
        credited.extend(c for c in claims if c is not None)
        return claims

    monkeypatch.setattr(module, "claims_credit_feed_many", watched)
    return credited


def ledger_of(user) -> dict[str, Any] | None:
    """What a resident's ledger holds, comparable between two runs (no ids, no times but
    the lots' expiry days): every counter of their account, the transfers that credit it,
    their lots. None for a resident never credited anything (no account opened yet)."""
    from carbon.models import Account, Lot

    account = Account.objects.filter(user=user).first()
    if account is None:
        return None
    transfers = Transfer.objects.filter(credit_account=account).order_by("created_at", "id")
    return {
        "account": {
            f.name: getattr(account, f.name)
            for f in Account._meta.concrete_fields
            if f.name not in ("id", "user", "created_at")
        },
        "transfers": [
            (t.amount_g, t.flag, t.code, t.category, t.description, t.debit_account.kind)
            for t in transfers.select_related("debit_account")
        ],
        "lots": sorted(
            (lot.amount_g, lot.remaining_g, lot.category, lot.expires_at.date())
            for lot in Lot.objects.filter(account=account)
        ),
    }


def assert_award_links(claim: Claim) -> None:
    """A credited claim's award is the one ledger_award writes for it (its reference and
    key), and its receipt names that transfer and its lot's expiry."""
    assert claim.award.reference == f"claim:{claim.pk}"
    assert claim.award.idempotency_key == f"claim:{claim.pk}:award"
    credit = claim.receipt["steps"][-1]
    assert credit["transfer_id"] == claim.award_id
    assert credit["expires_at"] == claim.award.lot.expires_at.isoformat()


def issued_g() -> int:
    """Grams the issuance shards have issued, net of what came back."""
    from carbon.models import Account, AccountKind

    accounts = Account.objects.filter(kind=AccountKind.ISSUANCE)
    return sum(a.debits_posted - a.credits_posted for a in accounts)
