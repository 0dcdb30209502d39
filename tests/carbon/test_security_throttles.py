"""Throttles and lockouts: failed logins are counted per account and per client (the admin's
login too, with a lockout an administrator lifts); token refresh and account erasure have
limits of their own, so one address's failed logins never block anyone's refresh."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from carbon.models import User
from tests.carbon.api_helpers import PASSWORD, assert_error, bearer, obtain_tokens
from tests.carbon.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def rates(monkeypatch):
    """Set some throttle rates for one test (DRF reads them into the class at import)."""

    def set_rates(**scoped):
        merged = {**ScopedRateThrottle.THROTTLE_RATES, **scoped}
        monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", merged)

    return set_rates


@pytest.fixture
def failure_limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def login(email: str, password: str, address: str = "10.0.0.1", **headers):
    return APIClient().post(
        TOKEN, {"email": email, "password": password}, format="json", REMOTE_ADDR=address, **headers
    )


def test_failed_logins_from_one_address_do_not_block_refreshing(rates):
    rates(login="3/min")
    user = UserFactory()
    tokens = obtain_tokens(user.email)  # from 127.0.0.1, like the refreshes below
    for _ in range(3):
        APIClient().post(TOKEN, {"email": user.email, "password": "guess"}, format="json")
    assert_error(
        APIClient().post(TOKEN, {"email": user.email, "password": "x"}, format="json"),
        429,
        "throttled",
    )

    response = APIClient().post(REFRESH, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 200, response.content


def test_refresh_has_its_own_limit_per_client(rates):
    rates(refresh="2/min")
    user = UserFactory()
    token = obtain_tokens(user.email)["refresh"]
    for _ in range(2):
        response = APIClient().post(REFRESH, {"refresh": token}, format="json")
        assert response.status_code == 200, response.content
        token = response.json()["refresh"]

    third = APIClient().post(REFRESH, {"refresh": token}, format="json")

    error = assert_error(third, 429, "throttled")
    assert error["details"]["retry_after_seconds"] > 0
    # Logging in is another scope: still open.
    assert login(user.email, PASSWORD, address="127.0.0.1").status_code == 200


def test_failed_logins_lock_the_account_whatever_address_they_come_from(failure_limit):
    user = UserFactory()
    statuses = [
        login(user.email.upper(), "guess", address=f"10.0.1.{i}").status_code
        for i in range(failure_limit)
    ]
    # The failure that reaches the limit is already answered with the lockout.
    assert statuses == [401] * (failure_limit - 1) + [429]

    # The right password, from an address never seen, waits for the cool-off.
    locked = login(user.email, PASSWORD, address="10.0.2.1")

    error = assert_error(locked, 429, "throttled")
    assert error["details"]["retry_after_seconds"] > 0
    # Other accounts are not affected.
    assert login(UserFactory().email, PASSWORD, address="10.0.2.1").status_code == 200


def test_failed_logins_lock_the_client_out_whatever_account_it_tries(failure_limit):
    statuses = [
        login(f"nobody{i}@example.org", "guess", address="10.0.3.3").status_code
        for i in range(failure_limit)
    ]
    assert statuses == [401] * (failure_limit - 1) + [429]
    user = UserFactory()

    assert_error(login(user.email, PASSWORD, address="10.0.3.3"), 429, "throttled")
    assert login(user.email, PASSWORD, address="10.0.3.4").status_code == 200


def test_behind_a_proxy_clients_are_told_apart_by_forwarded_for(failure_limit, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    user = UserFactory()
    for i in range(failure_limit):
        login(f"nobody{i}@example.org", "guess", address="10.9.9.9", HTTP_X_FORWARDED_FOR="1.1.1.1")

    # Same proxy, another client behind it: not locked out.
    other = login(user.email, PASSWORD, address="10.9.9.9", HTTP_X_FORWARDED_FOR="2.2.2.2")
    assert other.status_code == 200, other.content
    same = login(user.email, PASSWORD, address="10.9.9.9", HTTP_X_FORWARDED_FOR="1.1.1.1")
    assert_error(same, 429, "throttled")


def test_the_admin_login_locks_out_and_an_administrator_lifts_it(failure_limit):
    staff = User.objects.create_superuser(email="ops@example.org", password="ops-password-2026")
    for _ in range(failure_limit):
        page = Client(REMOTE_ADDR="10.0.4.4").post(
            ADMIN_LOGIN, {"username": "ops@example.org", "password": "guess"}
        )
        assert page.status_code in (200, 429)

    locked = Client(REMOTE_ADDR="10.0.4.5").post(
        ADMIN_LOGIN, {"username": "ops@example.org", "password": "ops-password-2026"}
    )
    assert locked.status_code == 429
    assert "_auth_user_id" not in locked.client.session

    # Another administrator lifts it in the admin: Axes > Access attempts > delete.
    other_admin = User.objects.create_superuser(email="lead@example.org", password="x" * 20)
    lead = Client()
    lead.force_login(other_admin)
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    assert attempts
    lifted = lead.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: attempts, "post": "yes"},
    )
    assert lifted.status_code == 302
    assert not AccessAttempt.objects.exists()

    again = Client(REMOTE_ADDR="10.0.4.5")
    response = again.post(
        ADMIN_LOGIN, {"username": "ops@example.org", "password": "ops-password-2026"}
    )
    assert response.status_code == 302, response.content
    assert again.session["_auth_user_id"] == str(staff.pk)


def test_erasing_the_account_has_its_own_password_guessing_limit(rates):
    rates(erase="2/hour", login="100/min")
    user = UserFactory()
    access = obtain_tokens(user.email)["access"]
    client = bearer(access)
    for _ in range(2):
        wrong = client.delete("/api/v1/me", {"password": "guess"}, format="json")
        assert_error(wrong, 400, "invalid")

    assert_error(
        client.delete("/api/v1/me", {"password": PASSWORD}, format="json"), 429, "throttled"
    )
    assert User.objects.get(pk=user.pk).is_active
    # The erase limit is not the login limit.
    assert login(user.email, PASSWORD, address="127.0.0.1").status_code == 200
