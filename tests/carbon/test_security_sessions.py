"""Sessions: a login starts a refresh-token family; a rotated token that comes back ends the
family (OAuth refresh-token reuse detection), and concurrent refreshes of one token yield
one rotation, never several live sessions."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from rest_framework.test import APIClient

from tests.carbon.api_helpers import PASSWORD, assert_error, bearer, obtain_tokens
from tests.carbon.factories import UserFactory

REFRESH = "/api/v1/auth/token/refresh"


def refresh(token: str, client: APIClient | None = None):
    return (client or APIClient()).post(REFRESH, {"refresh": token}, format="json")


def assert_refused(response, reason: str) -> None:
    error = assert_error(response, 401, "authentication_failed")
    assert error["details"]["reason"] == reason


@pytest.mark.django_db
def test_a_rotated_token_presented_again_ends_every_token_of_its_login():
    user = UserFactory()
    phone = obtain_tokens(user.email)
    tablet = obtain_tokens(user.email)  # another login: its own family
    first = refresh(phone["refresh"])
    assert first.status_code == 200, first.content
    second = refresh(first.json()["refresh"])
    assert second.status_code == 200, second.content

    # The first token, rotated twice ago, comes back (a thief's copy, say).
    assert_refused(refresh(phone["refresh"]), "token_reused")

    # Every token descended from that login is revoked, the newest included...
    assert_refused(refresh(second.json()["refresh"]), "token_reused")
    assert_refused(refresh(first.json()["refresh"]), "token_reused")
    # ...and the resident's other login goes on.
    other = refresh(tablet["refresh"])
    assert other.status_code == 200, other.content
    assert refresh(other.json()["refresh"]).status_code == 200


@pytest.mark.django_db
def test_rotation_keeps_the_access_token_working_and_refuses_forged_tokens():
    user = UserFactory()
    tokens = obtain_tokens(user.email)

    rotated = refresh(tokens["refresh"])

    assert rotated.status_code == 200, rotated.content
    assert bearer(rotated.json()["access"]).get("/api/v1/me").status_code == 200
    assert_refused(refresh(tokens["access"]), "token_not_valid")  # an access token
    assert_refused(refresh("not.a.jwt"), "token_not_valid")
    # A refresh token can't be used as an access token either.
    assert bearer(rotated.json()["refresh"]).get("/api/v1/me").status_code == 401


@pytest.mark.django_db
def test_an_erased_residents_refresh_token_is_refused():
    user = UserFactory()
    tokens = obtain_tokens(user.email)
    erased = bearer(tokens["access"]).delete("/api/v1/me", {"password": PASSWORD}, format="json")
    assert erased.status_code == 204

    response = refresh(tokens["refresh"])

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.django_db
def test_a_token_from_before_families_existed_rotates_once_then_reuse_is_caught():
    """Refresh tokens issued before this change carry no family: they start one."""
    from rest_framework_simplejwt.tokens import RefreshToken

    user = UserFactory()
    legacy = str(RefreshToken.for_user(user))

    rotated = refresh(legacy)
    assert rotated.status_code == 200, rotated.content

    assert_refused(refresh(legacy), "token_reused")
    assert_refused(refresh(rotated.json()["refresh"]), "token_reused")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_token_rotate_once_and_then_end_the_family():
    """N clients refresh the same token at once: exactly one gets a new pair; the others
    are reuses, which end the family, so the winner's new refresh token dies too."""
    clients = 6
    user = UserFactory()
    tokens = obtain_tokens(user.email)
    other_login = obtain_tokens(user.email)
    barrier = threading.Barrier(clients)
    responses: list = []
    lock = threading.Lock()

    def use_it():
        try:
            client = APIClient(raise_request_exception=False)
            barrier.wait()
            response = refresh(tokens["refresh"], client)
            with lock:
                responses.append(response)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=use_it) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * (clients - 1)
    reasons = {r.json()["error"]["details"]["reason"] for r in responses if r.status_code == 401}
    assert reasons == {"token_reused"}
    winner = next(r for r in responses if r.status_code == 200).json()
    assert_refused(refresh(winner["refresh"]), "token_reused")
    # Another login of the same resident is untouched.
    assert refresh(other_login["refresh"]).status_code == 200
