"""Signed requests we send to partners, over real HTTP to a local partner server: the
partner can verify them, a retry carries the same request id, and every way a partner can
fail to answer is told apart from an answer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carbon.services.partner_outbound import (
    PartnerNotConfigured,
    PartnerUnreachable,
    partner_send,
)
from carbon.services.partners import partner_create, partner_credential_rotate
from tests.partner_server import DROP, partner_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def bank():
    return partner_create(name="Hankou Partner Bank", kind="bank")


def _configured(issued, url):
    issued.partner.endpoint_url = url
    issued.partner.save(update_fields=["endpoint_url"])
    return issued.partner


def test_the_partner_verifies_our_signature_and_reads_the_request(bank):
    with partner_server(bank.secret) as server:
        server.handler = lambda request: (200, {"accepted": request.json["rows"]})
        reply = partner_send(
            partner=_configured(bank, server.url + "/api/"),
            path="/offsets/batches",
            payload={"rows": 3},
            request_id="batch-1",
        )
    assert reply.ok and reply.status == 200 and reply.body == {"accepted": 3}
    [request] = server.received
    assert request.signature_ok
    assert request.path == "/api/offsets/batches"
    assert request.headers["x-partner-key"].startswith("pk_")
    assert request.request_id == "batch-1"


def test_a_retry_with_the_same_request_id_is_acted_on_once(bank):
    with partner_server(bank.secret) as server:
        partner = _configured(bank, server.url)
        first = partner_send(partner=partner, path="t", payload={"a": 1}, request_id="r-1")
        again = partner_send(partner=partner, path="t", payload={"a": 1}, request_id="r-1")
    assert first == again
    assert len(server.received) == 2 and len(server.acted_on()) == 1


def test_after_a_rotation_we_sign_with_the_new_key(bank):
    new = partner_credential_rotate(partner=bank.partner, keep_old_for=timedelta(hours=1))
    with partner_server(new.secret) as server:
        partner_send(partner=_configured(bank, server.url), path="t", payload={}, request_id="x")
    [request] = server.received
    assert request.signature_ok and request.headers["x-partner-key"] == new.key_id


def test_a_refusal_is_an_answer(bank):
    with partner_server(bank.secret) as server:
        server.handler = lambda request: (422, {"code": "unknown_card"})
        reply = partner_send(
            partner=_configured(bank, server.url), path="t", payload={}, request_id="x"
        )
    assert not reply.ok and reply.status == 422 and reply.body == {"code": "unknown_card"}


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param({"handler": lambda request: (503, {"retry": True})}, id="5xx"),
        pytest.param({"handler": lambda request: (429, {})}, id="429"),
        pytest.param({"handler": lambda request: DROP}, id="dropped connection"),
        pytest.param(
            {"handler": lambda request: (200, ["not", "an", "object"])}, id="not an object"
        ),
        pytest.param({"delay": 1.5}, id="timeout"),
    ],
)
def test_no_usable_answer_is_unreachable_to_retry(bank, setup):
    with partner_server(bank.secret, **setup) as server:
        with pytest.raises(PartnerUnreachable):
            partner_send(
                partner=_configured(bank, server.url),
                path="t",
                payload={},
                request_id="x",
                timeout=0.5,
            )


def test_nothing_listening_is_unreachable(bank):
    with partner_server(bank.secret) as server:
        url = server.url
    with pytest.raises(PartnerUnreachable):
        partner_send(partner=_configured(bank, url), path="t", payload={}, request_id="x")


def test_a_partner_without_endpoint_or_key_is_not_configured(bank):
    with pytest.raises(PartnerNotConfigured):
        partner_send(partner=bank.partner, path="t", payload={}, request_id="x")
    partner = _configured(bank, "http://127.0.0.1:9")
    partner.credentials.update(revoked_at="2020-01-01T00:00:00Z")
    with pytest.raises(PartnerNotConfigured):
        partner_send(partner=partner, path="t", payload={}, request_id="x")
