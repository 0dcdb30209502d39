"""Acting over the rewards API in tests: redeeming, and reading a resident's balance."""

from __future__ import annotations

from carbon.services.ledger import balance_for_user
from tests.carbon.api_helpers import new_key

REDEEM = "/api/v1/rewards/redemptions"
OFFERS = "/api/v1/rewards/offers"
VOUCHERS = "/api/v1/rewards/vouchers"
TILL = "/api/v1/merchant/redemptions"


def redeem(client, offer, key: str | None = None, card_number: str | None = None, **headers):
    offer_id = offer if isinstance(offer, int) else offer.pk
    body = {"offer": offer_id, "idempotency_key": key or new_key()}
    if card_number is not None:
        body["card_number"] = card_number
    return client.post(REDEEM, body, format="json", **headers)


def available(user) -> int:
    return balance_for_user(user=user).available_g


def pending(user) -> int:
    return balance_for_user(user=user).pending_g
