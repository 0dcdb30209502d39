"""Partner systems sign their requests (HMAC-SHA256 over "{timestamp}." + raw body)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from carbon.models import Partner, PartnerCredential, PartnerRequestNonce
from carbon.services.partners import partner_create, partner_credential_rotate, partner_nonces_purge
from tests.carbon.api_helpers import assert_error, obtain_tokens, partner_post, signed_headers

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/partners/whoami"


@pytest.fixture
def issued(db):
    return partner_create(name="Metro Group", kind="transit_operator")


def whoami(issued, **kw):
    return partner_post(WHOAMI, key_id=issued.key_id, secret=issued.secret, **kw)


def test_a_signed_request_says_who_the_partner_is(issued):
    response = whoami(issued, payload={"hello": "metro"})

    assert response.status_code == 200, response.content
    assert response.json() == {"partner": "Metro Group", "kind": "transit_operator"}
    credential = PartnerCredential.objects.get(key_id=issued.key_id)
    assert credential.last_used_at is not None


def test_an_empty_body_can_be_signed_too(issued):
    headers = signed_headers(key_id=issued.key_id, secret=issued.secret, body=b"")

    response = APIClient().post(WHOAMI, **headers)

    assert response.status_code == 200, response.content


def test_the_secret_is_stored_encrypted(issued):
    credential = PartnerCredential.objects.get(key_id=issued.key_id)

    assert issued.secret.encode() not in bytes(credential.secret_encrypted)


def test_a_replayed_request_is_refused(issued):
    body = b'{"trip": 1}'
    headers = signed_headers(key_id=issued.key_id, secret=issued.secret, body=body)
    first = APIClient().generic("POST", WHOAMI, body, content_type="application/json", **headers)
    assert first.status_code == 200, first.content

    replay = APIClient().generic("POST", WHOAMI, body, content_type="application/json", **headers)

    assert_error(replay, 409, "replayed_request")
    assert PartnerRequestNonce.objects.count() == 1


def test_two_different_requests_in_the_same_second_both_pass(issued):
    ts = int(time.time())

    assert whoami(issued, payload={"n": 1}, timestamp=ts).status_code == 200
    assert whoami(issued, payload={"n": 2}, timestamp=ts).status_code == 200


def test_a_forged_signature_is_refused(issued):
    response = partner_post(WHOAMI, key_id=issued.key_id, secret="not-the-secret", payload={"x": 1})

    assert_error(response, 401, "invalid_signature")
    assert PartnerRequestNonce.objects.count() == 0


def test_a_tampered_body_is_refused(issued):
    headers = signed_headers(key_id=issued.key_id, secret=issued.secret, body=b'{"amount": 1}')

    response = APIClient().generic(
        "POST", WHOAMI, b'{"amount": 1000}', content_type="application/json", **headers
    )

    assert_error(response, 401, "invalid_signature")


def test_the_signature_binds_the_timestamp(issued):
    headers = signed_headers(key_id=issued.key_id, secret=issued.secret, body=b"{}")
    headers["HTTP_X_TIMESTAMP"] = str(int(headers["HTTP_X_TIMESTAMP"]) - 1)

    response = APIClient().generic(
        "POST", WHOAMI, b"{}", content_type="application/json", **headers
    )

    assert_error(response, 401, "invalid_signature")


@pytest.mark.parametrize("skew", [-330, 330, -3600, 10**9])
def test_a_stale_or_future_timestamp_is_refused_even_when_signed(issued, skew):
    response = whoami(issued, timestamp=int(time.time()) + skew)

    assert_error(response, 401, "invalid_signature")


@pytest.mark.parametrize("skew", [-270, 270])
def test_a_timestamp_within_five_minutes_is_accepted(issued, skew):
    assert whoami(issued, timestamp=int(time.time()) + skew).status_code == 200


def test_the_tolerance_comes_from_settings(issued, settings):
    settings.PARTNER_SIGNATURE_TOLERANCE_SECONDS = 30

    assert_error(whoami(issued, timestamp=int(time.time()) - 60), 401, "invalid_signature")


@pytest.mark.parametrize("timestamp", ["yesterday", "", "1.5e9"])
def test_a_malformed_timestamp_is_refused(issued, timestamp):
    headers = signed_headers(
        key_id=issued.key_id, secret=issued.secret, body=b"{}", timestamp=timestamp
    )

    response = APIClient().generic(
        "POST", WHOAMI, b"{}", content_type="application/json", **headers
    )

    assert_error(response, 401, "invalid_signature")


@pytest.mark.parametrize("missing", ["HTTP_X_PARTNER_KEY", "HTTP_X_TIMESTAMP", "HTTP_X_SIGNATURE"])
def test_a_missing_header_is_refused(issued, missing):
    headers = signed_headers(key_id=issued.key_id, secret=issued.secret, body=b"{}")
    del headers[missing]

    response = APIClient().generic(
        "POST", WHOAMI, b"{}", content_type="application/json", **headers
    )

    assert_error(response, 401, "invalid_signature")


def test_a_non_ascii_signature_is_refused_not_a_server_error(issued):
    headers = signed_headers(key_id=issued.key_id, secret=issued.secret, body=b"{}")
    headers["HTTP_X_SIGNATURE"] = "\xe9" * 64  # a latin-1 header byte, as WSGI decodes it

    client = APIClient(raise_request_exception=False)
    response = client.generic("POST", WHOAMI, b"{}", content_type="application/json", **headers)

    assert_error(response, 401, "invalid_signature")


def test_an_unknown_key_is_refused(issued):
    response = partner_post(WHOAMI, key_id="pk_000000000000000000000000", secret=issued.secret)

    assert_error(response, 401, "invalid_signature")


def test_a_deactivated_partner_is_refused(issued):
    Partner.objects.filter(pk=issued.partner.pk).update(is_active=False)

    assert_error(whoami(issued), 401, "invalid_signature")


def test_a_resident_token_does_not_open_the_partner_api(resident):
    access = obtain_tokens(resident.email)["access"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    assert_error(client.post(WHOAMI), 401, "invalid_signature")


def test_a_partner_signature_does_not_open_the_resident_api(issued):
    headers = signed_headers(key_id=issued.key_id, secret=issued.secret, body=b"")

    response = APIClient().get("/api/v1/me", **headers)

    assert_error(response, 401, "not_authenticated")


# --- rotation --------------------------------------------------------------------------


def test_rotation_without_grace_stops_the_old_key_at_once(issued):
    assert whoami(issued).status_code == 200

    new = partner_credential_rotate(partner=issued.partner)

    assert new.key_id != issued.key_id and new.secret != issued.secret
    assert_error(whoami(issued), 401, "invalid_signature")
    response = whoami(new)
    assert response.status_code == 200, response.content
    assert response.json()["partner"] == "Metro Group"


def test_rotation_with_grace_keeps_the_old_key_until_the_grace_ends(issued):
    new = partner_credential_rotate(partner=issued.partner, keep_old_for=timedelta(hours=1))

    assert whoami(issued, payload={"n": 1}).status_code == 200
    assert whoami(new, payload={"n": 1}).status_code == 200

    PartnerCredential.objects.filter(key_id=issued.key_id).update(
        revoked_at=timezone.now() - timedelta(seconds=1)
    )

    assert_error(whoami(issued, payload={"n": 2}), 401, "invalid_signature")
    assert whoami(new, payload={"n": 2}).status_code == 200


def test_a_rotation_without_grace_also_ends_an_earlier_grace_period(issued):
    """A key leaks: the operator rotated with a grace period, then rotates again at once."""
    partner_credential_rotate(partner=issued.partner, keep_old_for=timedelta(hours=1))
    newest = partner_credential_rotate(partner=issued.partner)

    assert whoami(newest).status_code == 200
    assert_error(whoami(issued), 401, "invalid_signature")


# --- nonces -----------------------------------------------------------------------------


def test_purging_old_nonces_keeps_recent_ones(issued):
    assert whoami(issued, payload={"n": 1}).status_code == 200
    assert whoami(issued, payload={"n": 2}).status_code == 200
    PartnerRequestNonce.objects.filter(
        pk=PartnerRequestNonce.objects.order_by("pk").first().pk
    ).update(seen_at=timezone.now() - timedelta(hours=1))

    assert partner_nonces_purge() == 1
    assert PartnerRequestNonce.objects.count() == 1


# --- the management command --------------------------------------------------------------


def test_partner_create_command_prints_working_credentials():
    out = StringIO()

    call_command("partner_create", "Green Grocer", "--kind", "merchant", stdout=out)

    text = out.getvalue()
    key_id = re.search(r"key id:\s+(\S+)", text).group(1)
    secret = re.search(r"secret:\s+(\S+)", text).group(1)
    partner = Partner.objects.get(name="Green Grocer")
    assert partner.kind == "merchant"
    assert PartnerCredential.objects.filter(partner=partner, key_id=key_id).exists()
    response = partner_post(WHOAMI, key_id=key_id, secret=secret, payload={"ping": True})
    assert response.status_code == 200, response.content
    assert response.json() == {"partner": "Green Grocer", "kind": "merchant"}


def test_partner_create_command_refuses_a_duplicate_name(issued):
    with pytest.raises(CommandError, match="already exists"):
        call_command("partner_create", "Metro Group", "--kind", "merchant", stdout=StringIO())

    assert Partner.objects.filter(name="Metro Group").count() == 1


def test_partner_create_command_refuses_an_unknown_kind():
    with pytest.raises(CommandError):
        call_command("partner_create", "Casino", "--kind", "casino", stdout=StringIO())

    assert not Partner.objects.exists()


def test_partner_create_service_refuses_an_unknown_kind():
    with pytest.raises(ValueError):
        partner_create(name="Casino", kind="casino")

    assert not Partner.objects.exists()
