"""A self declaration is inserted once, decided, with no idempotency look-up before it (issue
13): the rules' read under the resident's lock finds a retry. A retry still gets the original
back whatever changed since, and a different request with the same key is still refused."""

from __future__ import annotations

import pytest

from carbon.models import Claim, Transfer
from tests.carbon.api_helpers import assert_error, claim_payload

CLAIMS = "/api/v1/claims"

pytestmark = pytest.mark.django_db


def test_a_retry_gets_the_original_without_a_second_credit(auth_api, metro):
    payload = claim_payload("metro", 10, evidence={"type": "self"})
    first = auth_api.post(CLAIMS, payload, format="json")
    again = auth_api.post(CLAIMS, payload, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert (Claim.objects.count(), Transfer.objects.count()) == (1, 1)


def test_a_retry_gets_the_original_after_the_behaviour_is_withdrawn(auth_api, metro):
    payload = claim_payload("metro", 10, evidence={"type": "self"})
    first = auth_api.post(CLAIMS, payload, format="json").json()
    metro.is_active = False
    metro.save(update_fields=["is_active"])

    again = auth_api.post(CLAIMS, payload, format="json")

    assert again.status_code == 200 and again.json()["id"] == first["id"]
    # A new key for the withdrawn behaviour is refused, as before.
    fresh = auth_api.post(
        CLAIMS, claim_payload("metro", 10, evidence={"type": "self"}), format="json"
    )
    assert_error(fresh, 400, "unknown_behaviour")


def test_the_same_key_with_another_payload_is_refused_valid_or_not(auth_api, metro):
    payload = claim_payload("metro", 10, evidence={"type": "self"})
    assert auth_api.post(CLAIMS, payload, format="json").status_code == 201

    other = auth_api.post(CLAIMS, {**payload, "quantity": 11}, format="json")
    invalid = auth_api.post(CLAIMS, {**payload, "quantity": 100000}, format="json")

    assert_error(other, 409, "idempotency_conflict")
    assert_error(invalid, 409, "idempotency_conflict")
    assert (Claim.objects.count(), Transfer.objects.count()) == (1, 1)
