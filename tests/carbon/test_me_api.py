"""The resident's own data: profile and balance, export, consent, and erasure."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from carbon.models import Claim, Consent, Lot, Transfer, User
from carbon.services.ledger import ledger_hold
from tests.carbon.api_helpers import (
    PASSWORD,
    assert_error,
    bearer,
    claim_payload,
    client_for,
    new_key,
    obtain_tokens,
)
from tests.carbon.factories import BehaviourFactory, CommunityFactory, EmissionFactorFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"


def credit(client, behaviour_code: str, quantity, **extra) -> dict:
    response = client.post(
        "/api/v1/claims", claim_payload(behaviour_code, quantity, **extra), format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "credited", response.json()
    return response.json()


@pytest.fixture
def short_lived(db):
    """Credits that expire in 10 days, 100 g/use, no caps."""
    behaviour = BehaviourFactory(
        code="refill",
        name="Refill station",
        category="consumption",
        unit="use",
        evidence_types=["self"],
        max_quantity=Decimal("10"),
        credit_lifetime_days=10,
    )
    EmissionFactorFactory(
        behaviour=behaviour,
        grams_per_unit=Decimal("100"),
        valid_from=timezone.now() - timedelta(days=30),
    )
    return behaviour


# --- GET / PATCH /me -----------------------------------------------------------------


def test_me_of_a_new_resident_shows_profile_and_an_empty_balance(auth_api, resident):
    response = auth_api.get(ME)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(resident.public_id)
    assert body["email"] == resident.email
    assert body["display_name"] == resident.display_name
    assert body["role"] == "resident"
    assert (body["available_g"], body["pending_g"], body["lifetime_g"], body["expiring_30d_g"]) == (
        0,
        0,
        0,
        0,
    )
    assert body["next_expiries"] == []


def test_me_and_ledger_open_the_account_of_a_resident_who_has_none_yet(resident):
    """The account is read with the user (carbon.api.authentication); a resident without one
    yet gets it opened, as before, and reads an empty balance and ledger."""
    from carbon.models import Account

    assert not Account.objects.filter(user=resident).exists()
    client = client_for(resident)

    me = client.get(ME)
    ledger = client.get("/api/v1/ledger")

    assert me.status_code == 200 and ledger.status_code == 200, (me.content, ledger.content)
    assert me.json()["available_g"] == 0 and ledger.json()["results"] == []
    assert Account.objects.filter(user=resident).count() == 1


def test_me_of_staff_without_an_account_reads_zero_and_opens_none(db):
    from carbon.models import Account
    from tests.carbon.factories import UserFactory

    staff = UserFactory(role=User.Role.ADMINISTRATOR)

    response = client_for(staff).get(ME)

    assert response.status_code == 200, response.content
    assert response.json()["available_g"] == 0
    assert not Account.objects.filter(user=staff).exists()


def test_a_balance_is_never_read_from_someone_elses_account(resident, other_resident):
    from carbon.services.ledger import (
        account_for_user,
        balance_for_user,
        ledger_entries_for_user,
    )

    theirs = account_for_user(user=other_resident)

    with pytest.raises(ValueError):
        balance_for_user(user=resident, account=theirs)
    with pytest.raises(ValueError):
        ledger_entries_for_user(user=resident, account=theirs)


@pytest.mark.parametrize("login", ["bearer token", "same user object"])
def test_me_and_ledger_after_a_claim_show_the_new_balance(resident, short_lived, login):
    """The account comes with the user at authentication (a bearer token reads both anew
    each request); a user object that lives across requests (a test client's forced login)
    must not serve an account read by an earlier one."""
    if login == "bearer token":
        from rest_framework_simplejwt.tokens import AccessToken

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(resident)}")
    else:
        client = client_for(resident)
    assert client.get(ME).json()["available_g"] == 0
    assert client.get("/api/v1/ledger").json()["results"] == []
    credited = credit(client, "refill", 2)["credited_g"]

    assert credited > 0
    assert client.get(ME).json()["available_g"] == credited
    assert [e["amount_g"] for e in client.get("/api/v1/ledger").json()["results"]] == [credited]


def test_me_balance_follows_credits_holds_and_expiry(
    auth_api, resident, metro, short_lived, ledger_is_consistent
):
    credit(auth_api, "metro", 10)  # 784 g gross, half for a self declaration: 392, a year to live
    credit(auth_api, "refill", 2)  # 200 g, half: 100, expires in 10 days
    ledger_hold(user=resident, amount_g=50, idempotency_key=new_key(), description="Voucher hold")

    body = auth_api.get(ME).json()

    assert body["lifetime_g"] == 492
    assert body["pending_g"] == 50
    assert body["available_g"] == 442
    # The hold took the 50 g from the lot that expires first.
    assert body["expiring_30d_g"] == 50
    in_ten_days = timezone.localtime(timezone.now() + timedelta(days=10)).date()
    assert body["next_expiries"] == [{"date": in_ten_days.isoformat(), "grams": 50}]
    assert date.fromisoformat(body["next_expiries"][0]["date"]) > timezone.localdate()
    ledger_is_consistent()


def test_me_leaves_out_grams_past_expiry_the_job_has_not_swept_yet(
    auth_api, resident, metro, short_lived
):
    credit(auth_api, "metro", 10)  # 392 g
    credit(auth_api, "refill", 2)  # 100 g
    lots = Lot.objects.filter(account__user=resident)
    # The refill's lot ran out a minute ago and the sweep has not run; the metro's lot runs
    # out in five days.
    lots.filter(amount_g=100).update(expires_at=timezone.now() - timedelta(minutes=1))
    in_five_days = timezone.now() + timedelta(days=5)
    lots.filter(amount_g=392).update(expires_at=in_five_days)

    body = auth_api.get(ME).json()

    assert body["lifetime_g"] == 492
    assert body["available_g"] == 392
    assert body["expiring_30d_g"] == 392
    day = timezone.localtime(in_five_days).date()
    assert body["next_expiries"] == [{"date": day.isoformat(), "grams": 392}]


def test_me_requires_authentication(api):
    assert_error(api.get(ME), 401, "not_authenticated")
    assert_error(api.patch(ME, {"display_name": "X"}, format="json"), 401, "not_authenticated")


def test_patch_me_changes_the_display_name(auth_api, resident):
    response = auth_api.patch(ME, {"display_name": "  Lin Wei  "}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["display_name"] == "Lin Wei"
    resident.refresh_from_db()
    assert resident.display_name == "Lin Wei"


def test_patch_me_moves_to_a_community_and_its_district(auth_api, resident):
    community = CommunityFactory(code="wuchang-3")

    response = auth_api.patch(ME, {"community": "wuchang-3"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["community"] == "wuchang-3"
    assert response.json()["district"] == community.district.code
    resident.refresh_from_db()
    assert (resident.community_id, resident.district_id) == (community.pk, community.district_id)


def test_patch_me_refuses_an_unknown_community_and_changes_nothing(auth_api, resident):
    before = resident.display_name

    response = auth_api.patch(
        ME, {"display_name": "New name", "community": "atlantis"}, format="json"
    )

    assert_error(response, 400, "unknown_community")
    resident.refresh_from_db()
    assert resident.display_name == before
    assert resident.community_id is None


def test_patch_me_cannot_change_role_or_email(auth_api, resident):
    email = resident.email

    response = auth_api.patch(
        ME, {"role": "administrator", "email": "boss@example.org", "is_staff": True}, format="json"
    )

    assert response.status_code == 200, response.content
    resident.refresh_from_db()
    assert resident.role == User.Role.RESIDENT
    assert resident.email == email
    assert resident.is_staff is False


def test_the_openapi_schema_describes_me_with_its_balance():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)

    for method in ("get", "patch"):
        response = schema["paths"]["/api/v1/me"][method]["responses"]["200"]
        ref = response["content"]["application/json"]["schema"]["$ref"]
        properties = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]
        assert {
            "email",
            "display_name",
            "available_g",
            "pending_g",
            "lifetime_g",
            "expiring_30d_g",
            "next_expiries",
        } <= set(properties), (method, sorted(properties))


# --- export ---------------------------------------------------------------------------


def test_export_holds_all_my_data_and_nothing_of_others(auth_api, resident, other_resident, metro):
    credit(auth_api, "metro", 5, evidence={"type": "self", "note": "line 2 to work"})
    auth_api.put("/api/v1/me/consents/transit_card")
    others = client_for(other_resident)
    credit(others, "metro", 7)

    response = auth_api.get("/api/v1/me/export")

    assert response.status_code == 200, response.content
    assert "attachment" in response["Content-Disposition"]
    data = response.json()
    assert data["profile"]["email"] == resident.email
    assert data["profile"]["id"] == str(resident.public_id)
    assert data["balance"]["available_g"] == 196
    assert [c["scope"] for c in data["consents"]] == ["transit_card"]
    assert len(data["claims"]) == 1
    assert data["claims"][0]["evidence"] == {"note": "line 2 to work"}
    assert data["claims"][0]["credited_g"] == 196
    assert [e["amount_g"] for e in data["ledger"]] == [196]
    assert other_resident.email not in response.content.decode()


def test_export_requires_authentication(api):
    assert_error(api.get("/api/v1/me/export"), 401, "not_authenticated")


# --- consent ----------------------------------------------------------------------------


def test_consent_grant_is_idempotent_and_revoke_closes_it(auth_api, resident):
    assert auth_api.get("/api/v1/me/consents").json() == []

    first = auth_api.put("/api/v1/me/consents/bike_share")
    again = auth_api.put("/api/v1/me/consents/bike_share")

    assert first.status_code == 200, first.content
    assert first.json()["scope"] == "bike_share"
    assert first.json()["revoked_at"] is None
    assert again.json() == first.json()
    assert Consent.objects.filter(user=resident).count() == 1

    revoked = auth_api.delete("/api/v1/me/consents/bike_share")

    assert revoked.status_code == 204
    listed = auth_api.get("/api/v1/me/consents").json()
    assert len(listed) == 1 and listed[0]["revoked_at"] is not None
    assert not Consent.objects.current().filter(user=resident).exists()


def test_granting_again_after_revoking_opens_a_new_consent(auth_api, resident):
    auth_api.put("/api/v1/me/consents/recycling")
    auth_api.delete("/api/v1/me/consents/recycling")

    response = auth_api.put("/api/v1/me/consents/recycling")

    assert response.status_code == 200
    assert response.json()["revoked_at"] is None
    assert Consent.objects.filter(user=resident, scope="recycling").count() == 2
    assert Consent.objects.current().filter(user=resident, scope="recycling").count() == 1


def test_consents_are_my_own(auth_api, other_resident):
    Consent.objects.create(user=other_resident, scope="utility")

    assert auth_api.get("/api/v1/me/consents").json() == []


@pytest.mark.parametrize("method", ["put", "delete"])
def test_unknown_consent_scope_is_refused(auth_api, resident, method):
    response = getattr(auth_api, method)("/api/v1/me/consents/horoscope")

    error = assert_error(response, 400, "unknown_consent_scope")
    assert "transit_card" in error["details"]["known"]
    assert not Consent.objects.exists()


def test_consent_requires_authentication(api):
    assert_error(api.put("/api/v1/me/consents/utility"), 401, "not_authenticated")
    assert not Consent.objects.exists()


# --- erasure ----------------------------------------------------------------------------


def test_delete_me_with_a_wrong_password_erases_nothing(resident):
    client = bearer(obtain_tokens(resident.email)["access"])

    response = client.delete(ME, {"password": "not it"}, format="json")

    error = assert_error(response, 400, "invalid")
    assert "password" in error["details"]
    resident.refresh_from_db()
    assert resident.is_active and resident.erased_at is None
    assert client.get(ME).status_code == 200


def test_delete_me_requires_the_password_field(auth_api, resident):
    assert_error(auth_api.delete(ME, {}, format="json"), 400, "invalid")
    resident.refresh_from_db()
    assert resident.erased_at is None


def test_delete_me_erases_personal_data_but_keeps_an_anonymous_ledger(
    resident, metro, ledger_is_consistent
):
    tokens = obtain_tokens(resident.email)
    client = bearer(tokens["access"])
    client.put("/api/v1/me/consents/transit_card")
    credit(client, "metro", 5, evidence={"type": "self", "note": "ride home with Mei"})
    ledger_hold(user=resident, amount_g=20, idempotency_key=new_key(), description="Voucher hold")
    email = resident.email
    transfers_before = set(
        Transfer.objects.values_list("pk", "amount_g", "debit_account", "credit_account")
    )

    response = client.delete(ME, {"password": PASSWORD}, format="json")

    assert response.status_code == 204, response.content
    resident.refresh_from_db()
    assert resident.erased_at is not None
    assert resident.is_active is False
    assert resident.email != email and "erased" in resident.email
    assert resident.display_name == ""
    assert not resident.has_usable_password()
    assert not Consent.objects.current().filter(user=resident).exists()
    claim = Claim.objects.get(user=resident)
    assert claim.evidence == {}
    assert claim.credited_g == 196  # amounts stay: the ledger refers to them
    assert (
        set(Transfer.objects.values_list("pk", "amount_g", "debit_account", "credit_account"))
        == transfers_before
    )
    assert not User.objects.filter(email=email).exists()
    ledger_is_consistent()


def test_delete_me_makes_the_old_tokens_and_password_useless(api, resident):
    tokens = obtain_tokens(resident.email)
    email = resident.email
    assert (
        bearer(tokens["access"]).delete(ME, {"password": PASSWORD}, format="json").status_code
        == 204
    )

    assert_error(bearer(tokens["access"]).get(ME), 401, "authentication_failed")
    assert_error(
        api.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json"),
        401,
        "authentication_failed",
    )
    assert_error(
        api.post("/api/v1/auth/token", {"email": email, "password": PASSWORD}, format="json"),
        401,
        "authentication_failed",
    )


def test_an_erased_address_can_register_again(api, resident):
    email = resident.email
    bearer(obtain_tokens(email)["access"]).delete(ME, {"password": PASSWORD}, format="json")

    response = api.post(
        "/api/v1/auth/register",
        {"email": email, "password": "lantern-ferry-93", "display_name": "Back"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["id"] != str(resident.public_id)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_consent_grants_are_idempotent():
    """A client retries a PUT whose first attempt is still in flight."""
    import threading

    from django.db import connections

    from tests.carbon.factories import UserFactory

    statuses: list[int] = []
    for _ in range(8):  # the race is lost most of the time; a few rounds make it certain
        user = UserFactory()
        barrier = threading.Barrier(4)

        def submit(user=user, barrier=barrier):
            try:
                client = APIClient(raise_request_exception=False)
                client.force_authenticate(user)
                barrier.wait()
                statuses.append(client.put("/api/v1/me/consents/bike_share").status_code)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=submit) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert Consent.objects.current().filter(user=user, scope="bike_share").count() == 1

    assert set(statuses) == {200}
