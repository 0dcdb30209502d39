"""Registration, tokens, refresh rotation and the login throttle, through HTTP."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from carbon.models import Account, User
from tests.carbon.api_helpers import assert_error, bearer, obtain_tokens
from tests.carbon.factories import CommunityFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
GOOD_PASSWORD = "lantern-ferry-93"


def register(api, **fields):
    body = {"email": "ana@example.org", "password": GOOD_PASSWORD, "display_name": "Ana", **fields}
    return api.post(REGISTER, body, format="json")


def test_register_creates_a_resident_with_a_ledger_account(api):
    response = register(api, email="Ana@Example.ORG")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "ana@example.org"
    assert body["display_name"] == "Ana"
    assert body["role"] == "resident"
    assert "password" not in body
    user = User.objects.get(email="ana@example.org")
    assert str(user.public_id) == body["id"]
    assert user.check_password(GOOD_PASSWORD)
    assert Account.objects.filter(user=user, kind="resident").count() == 1


def test_register_with_a_community_sets_community_and_district(api):
    community = CommunityFactory(code="hongshan-1")

    response = register(api, community="hongshan-1")

    assert response.status_code == 201, response.content
    assert response.json()["community"] == "hongshan-1"
    assert response.json()["district"] == community.district.code


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"password": "password"}, 400, "invalid"),  # too common
        ({"password": "short"}, 400, "invalid"),
        ({"email": "not-an-email"}, 400, "invalid"),
        ({"display_name": ""}, 400, "invalid"),
        ({"community": "nowhere"}, 400, "unknown_community"),
    ],
)
def test_register_refuses_bad_input_and_writes_nothing(api, fields, status, code):
    response = register(api, **fields)

    assert_error(response, status, code)
    assert User.objects.count() == 0
    assert Account.objects.count() == 0


def test_register_reports_which_field_is_wrong(api):
    error = assert_error(register(api, password="password"), 400, "invalid")

    assert "password" in error["details"]


def test_register_twice_with_the_same_email_in_another_case_conflicts(api):
    assert register(api).status_code == 201

    response = register(api, email="ANA@example.org")

    assert_error(response, 409, "email_taken")
    assert User.objects.count() == 1


def test_register_refuses_malformed_json(api):
    response = api.generic(
        "POST", REGISTER, b'{"email": "a@b.org",', content_type="application/json"
    )

    assert_error(response, 400, "malformed_request")
    assert User.objects.count() == 0


def test_token_pair_authenticates_further_requests(api):
    register(api)

    tokens = obtain_tokens("ana@example.org", GOOD_PASSWORD)

    assert set(tokens) == {"access", "refresh"}
    me = bearer(tokens["access"]).get("/api/v1/me")
    assert me.status_code == 200, me.content
    assert me.json()["email"] == "ana@example.org"


def test_login_with_the_email_as_typed_at_registration(api):
    """Phones capitalise the first letter; the address is stored lowercased."""
    assert register(api, email="Ana@Example.org").status_code == 201

    response = api.post(
        TOKEN, {"email": "Ana@Example.org", "password": GOOD_PASSWORD}, format="json"
    )

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"access", "refresh"}


def test_wrong_password_is_refused_with_the_error_shape(api, resident):
    response = api.post(
        TOKEN, {"email": resident.email, "password": "not the password"}, format="json"
    )

    assert_error(response, 401, "authentication_failed")


def test_requests_without_or_with_a_bad_token_are_unauthenticated(api):
    assert_error(api.get("/api/v1/me"), 401, "not_authenticated")

    error = assert_error(bearer("not.a.jwt").get("/api/v1/me"), 401, "authentication_failed")
    assert error["details"]["reason"] == "token_not_valid"


def test_the_refresh_token_is_not_an_access_token(resident):
    tokens = obtain_tokens(resident.email)

    assert_error(bearer(tokens["refresh"]).get("/api/v1/me"), 401, "authentication_failed")


def test_refresh_rotates_and_refuses_the_used_token(api, resident):
    tokens = obtain_tokens(resident.email)

    first = api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")

    assert first.status_code == 200, first.content
    rotated = first.json()
    assert set(rotated) == {"access", "refresh"}
    assert rotated["refresh"] != tokens["refresh"]
    assert bearer(rotated["access"]).get("/api/v1/me").status_code == 200

    replay = api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    error = assert_error(replay, 401, "authentication_failed")
    assert error["details"]["reason"] == "token_reused"

    # Reuse ends the session: the rotated token is revoked too (tests/carbon/
    # test_security_sessions.py has the rule in full).
    revoked = api.post(REFRESH, {"refresh": rotated["refresh"]}, format="json")
    assert_error(revoked, 401, "authentication_failed")


@pytest.fixture
def login_rate_3_per_min(monkeypatch):
    rates = {**ScopedRateThrottle.THROTTLE_RATES, "login": "3/min"}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)


def test_login_is_throttled(resident, login_rate_3_per_min):
    client = APIClient()
    for _ in range(3):
        wrong = client.post(TOKEN, {"email": resident.email, "password": "guess"}, format="json")
        assert wrong.status_code == 401

    # Even the right password waits once the scope is used up.
    response = client.post(
        TOKEN, {"email": resident.email, "password": "correct horse battery"}, format="json"
    )

    error = assert_error(response, 429, "throttled")
    assert 0 < error["details"]["retry_after_seconds"] <= 60


def test_login_throttle_is_per_client_address(resident, login_rate_3_per_min):
    for _ in range(3):
        APIClient().post(
            TOKEN,
            {"email": resident.email, "password": "guess"},
            format="json",
            REMOTE_ADDR="10.0.0.1",
        )

    other = APIClient().post(
        TOKEN,
        {"email": resident.email, "password": "correct horse battery"},
        format="json",
        REMOTE_ADDR="10.0.0.2",
    )

    assert other.status_code == 200, other.content


def test_a_forged_forwarded_for_header_does_not_escape_the_login_throttle(
    resident, login_rate_3_per_min
):
    codes = [
        APIClient()
        .post(
            TOKEN,
            {"email": resident.email, "password": f"guess-{i}"},
            format="json",
            REMOTE_ADDR="10.0.0.9",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        )
        .status_code
        for i in range(5)
    ]

    assert codes[3:] == [429, 429]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_double_submitted_registration_is_one_account_and_a_conflict(settings):
    import threading

    from django.db import connections

    # The production hasher: hashing between the check and the insert is the race window.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    outcomes: list[list[int]] = []
    for round_ in range(3):
        email = f"ana{round_}@example.org"
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def submit(email=email, barrier=barrier, statuses=statuses):
            try:
                barrier.wait()
                client = APIClient(raise_request_exception=False)
                statuses.append(register(client, email=email).status_code)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=submit) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert User.objects.filter(email=email).count() == 1
        outcomes.append(sorted(statuses))

    assert outcomes == [[201, 409]] * 3
