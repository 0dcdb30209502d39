"""Acting as the resident and as the bank over HTTP in the offsets tests: linking a loan and
the bank's decision, requesting offsets, sending the day's batch to a bank server, and the
bank's signed answers."""

from __future__ import annotations

import time
from typing import Any

from carbon.services.partners import IssuedCredential
from rewards.offsets.models import BankProgramme, OffsetBatch
from rewards.offsets.services.batches import offset_batch_prepare, offset_batch_send
from tests.carbon.api_helpers import new_key, partner_post

# Each signed request gets its own timestamp (a second after the previous one, and inside
# the tolerance): two identical bodies signed in the same second would otherwise be one
# request and its replay, as a bank resending an answer signs it anew.
_last_timestamp = 0


def _fresh() -> int:
    global _last_timestamp
    _last_timestamp = max(_last_timestamp + 1, int(time.time()) - 200)
    return _last_timestamp


OFFSETS = "/api/v1/rewards/offsets"
LINKS = f"{OFFSETS}/links"
BANK_LINKS = f"{OFFSETS}/bank/links"
BANK_ANSWERS = f"{OFFSETS}/bank/answers"


def link_ask(client, programme: BankProgramme, loan_reference: str = "4402 1188 0031 7765"):
    return client.post(
        LINKS,
        {"programme": programme.pk, "loan_reference": loan_reference, "consent": True},
        format="json",
    )


def bank_decides(
    bank: IssuedCredential,
    *,
    link_token: str,
    loan_reference: str = "4402118800317765",
    status: str = "confirmed",
    bank_link_id: str = "HK-LINK-1",
    **extra: Any,
):
    return partner_post(
        BANK_LINKS,
        key_id=bank.key_id,
        secret=bank.secret,
        payload={
            "link_token": link_token,
            "loan_reference": loan_reference,
            "status": status,
            "bank_link_id": bank_link_id,
            **extra,
        },
        timestamp=_fresh(),
    )


def linked(
    client,
    programme: BankProgramme,
    bank: IssuedCredential,
    loan_reference: str = "4402 1188 0031 7765",
) -> dict:
    asked = link_ask(client, programme, loan_reference=loan_reference)
    assert asked.status_code == 201, asked.content
    decided = bank_decides(
        bank, link_token=asked.json()["link_token"], loan_reference=loan_reference
    )
    assert decided.status_code == 200, decided.content
    return asked.json()


def request_offset(client, programme: BankProgramme, grams: int, key: str | None = None):
    return client.post(
        OFFSETS,
        {"programme": programme.pk, "grams": grams, "idempotency_key": key or new_key()},
        format="json",
    )


def send_days_batch(programme: BankProgramme) -> OffsetBatch:
    batch = offset_batch_prepare(programme=programme)
    assert batch is not None
    offset_batch_send(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


def bank_answers(bank: IssuedCredential, rows: list[dict]):
    return partner_post(
        BANK_ANSWERS,
        key_id=bank.key_id,
        secret=bank.secret,
        payload={"offsets": rows},
        timestamp=_fresh(),
    )


def confirmation(offset: dict, *, interest_fen: int | None = None, **changes: Any) -> dict:
    """The bank's confirmation of an offset as the API showed it to the resident."""
    value_fen = round(float(offset["value_cny"]) * 100)
    return {
        "offset_id": offset["id"],
        "status": "confirmed",
        "grams": offset["grams"],
        "value_fen": value_fen,
        "interest_credited_fen": value_fen if interest_fen is None else interest_fen,
        **changes,
    }


def offsets_admin_rows(user) -> None:
    """A row of each offsets model, made by the services (for the admin's permission tests,
    on top of seed_demo's programme): a confirmed loan link, an offset and its day's batch."""
    from rewards.offsets.demo import DEMO_PROGRAMME
    from rewards.offsets.services.links import loan_link_create, loan_link_decide
    from rewards.offsets.services.requests import offset_request
    from tests.rewards.offsets.factories import award

    programme = BankProgramme.objects.select_related("bank").get(name=DEMO_PROGRAMME)
    link = loan_link_create(
        user=user, programme=programme, loan_reference="44021188", consent=True
    ).link
    loan_link_decide(
        bank=programme.bank,
        link_token=link.link_token,
        loan_reference="44021188",
        confirmed=True,
        bank_link_id="HK-1",
    )
    award(user, 1_000)
    offset_request(user=user, programme_id=programme.pk, grams=500, idempotency_key=new_key())
    offset_batch_prepare(programme=programme)
