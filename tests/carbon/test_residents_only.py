"""Only residents earn, hold and spend points: every resident endpoint refuses merchant staff,
institution members and administrators (403 residents_only), and so do the services behind
them, the partner feeds and the balance socket.

The route walk below is what makes it impossible to forget on a new endpoint: every route
under /api/v1/ (whatever app serves it) is resident-only, partner-signed, public, guarded by
a permission of its own audience (merchant staff, a bank), or listed in SIGNED_IN_ANY with
the reason any signed-in account may call it. The core's routes are also listed one by one
(CORE_AUDIENCES), so a new core route is classified on purpose.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.views import APIView

from carbon.adapters.partner_events.models import PartnerLink
from carbon.adapters.transit.cards import transit_card_link
from carbon.adapters.transit.models import TransitCard, Trip, TripStatus
from carbon.api.partner_auth import IsPartner, PartnerSignatureAuthentication
from carbon.api.permissions import IsResident
from carbon.models import Account, Appeal, Claim, ClaimStatus, Consent, Transfer, User
from carbon.services.appeals import appeal_contest, appeal_report_missed
from carbon.services.claims import claim_review, claim_submit, claims_release_held
from carbon.services.ledger import ledger_award
from carbon.services.residents import NotAResident
from tests.carbon.api_helpers import (
    assert_error,
    bearer,
    claim_payload,
    client_for,
    new_key,
    obtain_tokens,
)
from tests.carbon.event_samples import link, ride
from tests.carbon.event_samples import push_events as push
from tests.carbon.factories import PartnerFactory, RefusedClaimFactory, UserFactory
from tests.carbon.test_websocket import run_async, socket
from tests.carbon.transit_samples import CARD, ago, linked, pushed, tap

NON_RESIDENTS = [
    User.Role.MERCHANT_STAFF,
    User.Role.INSTITUTION_MEMBER,
    User.Role.ADMINISTRATOR,
]


def account_of(role: str) -> User:
    """A signed-up account of that role (merchant staff work for a partner)."""
    extra = {"partner": PartnerFactory()} if role == User.Role.MERCHANT_STAFF else {}
    if role == User.Role.ADMINISTRATOR:
        extra["is_staff"] = True
    return UserFactory(role=role, **extra)


def becomes(user: User, role: str) -> User:
    """A resident's account given another role later (hired by a merchant, say)."""
    user.role = role
    user.partner = PartnerFactory() if role == User.Role.MERCHANT_STAFF else None
    user.save(update_fields=["role", "partner"])
    return user


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """The in-memory channel layer's queues belong to one event loop; each socket test runs
    its own."""
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


# --- the route walk -------------------------------------------------------------------------

RESIDENT, PARTNER, PUBLIC, OWN_AUDIENCE, SIGNED_IN = (
    "resident-only",
    "partner-signed",
    "public",
    "own audience",
    "any signed-in account",
)
_METHODS = ("get", "post", "put", "patch", "delete")

# The only routes any signed-in account may call, and why. Keep it short: each entry is a
# decision, not a default.
SIGNED_IN_ANY = {
    ("api/v1/me", "GET"): "every account's own profile; a non-resident's balance reads as zero",
    ("api/v1/me", "PATCH"): "every account's display name (and community) is its own to edit",
    ("api/v1/me", "DELETE"): "erasure is every data subject's right, staff included",
    ("api/v1/me/export", "GET"): "a copy of one's data is every data subject's right",
    ("api/v1/me/consents", "GET"): "a consent stays visible, so it can be withdrawn",
    ("api/v1/me/consents/<str:scope>", "DELETE"): (
        "withdrawing consent stays as easy as giving it, even after the account stopped being "
        "a resident's (granting it is resident-only)"
    ),
    ("api/v1/leaderboards", "GET"): "the boards and their definitions are the city's to read",
    ("api/v1/leaderboards/<str:key>", "GET"): (
        "anyone signed in may watch a board; around=me answers an account not on it with no rank"
    ),
    # Biodiversity: research institutions and public volunteers survey together.
    ("api/v1/biodiversity/sightings", "GET"): "one's own sightings, whoever recorded them",
    ("api/v1/biodiversity/sightings", "POST"): (
        "institution members record sightings beside residents (the survey model of the issue)"
    ),
    ("api/v1/biodiversity/sightings/<uuid:pk>/identifications", "POST"): (
        "identifications by anyone, experts of any role included (iNaturalist's model)"
    ),
    ("api/v1/biodiversity/sightings/<uuid:pk>/flags", "POST"): (
        "anyone signed in may flag spam, inappropriate content or a copyright breach"
    ),
    ("api/v1/biodiversity/sightings/<uuid:pk>/verdicts", "POST"): (
        "the service itself admits only an institution's members (not_institution_member)"
    ),
}

# Every route and method of the carbon core, with its audience.
CORE_AUDIENCES = {
    ("api/v1/auth/register", "POST"): PUBLIC,
    ("api/v1/auth/token", "POST"): PUBLIC,
    ("api/v1/auth/token/refresh", "POST"): PUBLIC,
    ("api/v1/me", "GET"): SIGNED_IN,
    ("api/v1/me", "PATCH"): SIGNED_IN,
    ("api/v1/me", "DELETE"): SIGNED_IN,
    ("api/v1/me/export", "GET"): SIGNED_IN,
    ("api/v1/me/consents", "GET"): SIGNED_IN,
    ("api/v1/me/consents/<str:scope>", "PUT"): RESIDENT,
    ("api/v1/me/consents/<str:scope>", "DELETE"): SIGNED_IN,
    ("api/v1/behaviours", "GET"): PUBLIC,
    ("api/v1/leaderboards", "GET"): SIGNED_IN,
    ("api/v1/leaderboards/<str:key>", "GET"): SIGNED_IN,
    ("api/v1/claims", "GET"): RESIDENT,
    ("api/v1/claims", "POST"): RESIDENT,
    ("api/v1/claims/<uuid:pk>", "GET"): RESIDENT,
    ("api/v1/claims/<uuid:pk>/appeal", "POST"): RESIDENT,
    ("api/v1/appeals", "GET"): RESIDENT,
    ("api/v1/appeals", "POST"): RESIDENT,
    ("api/v1/ledger", "GET"): RESIDENT,
    ("api/v1/partners/whoami", "GET"): PARTNER,
    ("api/v1/partners/whoami", "POST"): PARTNER,
    ("api/v1/me/transit-cards", "GET"): RESIDENT,
    ("api/v1/me/transit-cards", "POST"): RESIDENT,
    ("api/v1/me/transit-cards/<int:pk>", "DELETE"): RESIDENT,
    ("api/v1/me/transit-cards/<int:pk>/confirm", "POST"): RESIDENT,
    ("api/v1/partners/transit/taps", "POST"): PARTNER,
    ("api/v1/partners/transit/links/confirm", "POST"): PARTNER,
    ("api/v1/partners/transit/links/code", "POST"): PARTNER,
    ("api/v1/claims/<uuid:pk>/photo", "GET"): RESIDENT,
    ("api/v1/claims/<uuid:pk>/thumbnail", "GET"): RESIDENT,
    ("api/v1/partners", "GET"): PUBLIC,
    ("api/v1/partners/events", "POST"): PARTNER,
    ("api/v1/me/partner-links", "GET"): RESIDENT,
    ("api/v1/me/partner-links", "POST"): RESIDENT,
    ("api/v1/me/partner-links/<int:pk>", "DELETE"): RESIDENT,
    ("api/v1/me/partner-links/<int:pk>/confirm", "POST"): RESIDENT,
    ("api/v1/partners/links/confirm", "POST"): PARTNER,
    ("api/v1/partners/links/code", "POST"): PARTNER,
}


def api_routes() -> list[tuple[str, object]]:
    """Every route under /api/v1/ with its view callable, DRF or not."""
    found = []

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                found.append((prefix + str(entry.pattern), entry.callback))

    walk(get_resolver().url_patterns)
    return [(route, callback) for route, callback in found if route.startswith("api/v1/")]


def _audience(view: APIView) -> str:
    permissions = view.get_permissions()
    authenticators = view.get_authenticators()
    if authenticators and all(
        isinstance(a, PartnerSignatureAuthentication) for a in authenticators
    ):
        return PARTNER
    if all(isinstance(p, AllowAny) for p in permissions):
        return PUBLIC
    if any(isinstance(p, IsResident) for p in permissions):
        return RESIDENT
    if all(isinstance(p, (IsAuthenticated, IsPartner)) for p in permissions):
        return SIGNED_IN
    return OWN_AUDIENCE


def audiences() -> dict[tuple[str, str], tuple[str, str]]:
    """{(route, METHOD): (audience, module of the view)} for every API route."""
    found = {}
    for route, callback in api_routes():
        cls = getattr(callback, "cls", None)
        assert isinstance(cls, type) and issubclass(cls, APIView), (
            f"{route} is not a DRF view: nothing here can tell who may call it"
        )
        for method in _METHODS:
            if not hasattr(cls, method):
                continue
            view = cls(**getattr(callback, "initkwargs", {}))
            # get_permissions may depend on the method (granting a consent vs withdrawing it).
            view.request = SimpleNamespace(method=method.upper())
            view.args, view.kwargs = (), {}
            found[(route, method.upper())] = (_audience(view), cls.__module__)
    return found


def resident_routes() -> list[tuple[str, str]]:
    return sorted(key for key, (audience, _) in audiences().items() if audience == RESIDENT)


def test_every_core_route_has_the_audience_it_was_given():
    core = {
        key: audience
        for key, (audience, module) in audiences().items()
        if module.startswith("carbon.")
    }

    assert core == CORE_AUDIENCES


def test_no_route_is_open_to_any_signed_in_account_unless_listed_with_a_reason():
    open_to_all = {key for key, (audience, _) in audiences().items() if audience == SIGNED_IN}

    assert open_to_all == set(SIGNED_IN_ANY)
    assert all(reason.strip() for reason in SIGNED_IN_ANY.values())


def test_the_walk_sees_the_resident_routes_of_feature_apps_too():
    # The vouchers' and offsets' endpoints use the core's IsResident: a walk that found only
    # the core's would hold nothing for the others.
    outside_core = {
        key for key, (audience, module) in audiences().items() if not module.startswith("carbon.")
    }

    assert len(resident_routes()) > 20
    assert any(key in outside_core for key in resident_routes())


# --- every resident route refuses every other role, over HTTP --------------------------------


def _path(route: str) -> str:
    def fill(match: re.Match) -> str:
        converter = match.group(1) or "str"
        return {"uuid": str(uuid.uuid4()), "int": "1"}.get(converter, "transit_card")

    return "/" + re.sub(r"<(?:(\w+):)?\w+>", fill, route)


def _written() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (Claim, Transfer, Account, Appeal, Consent, TransitCard, PartnerLink)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("role", NON_RESIDENTS)
@pytest.mark.parametrize(("route", "method"), resident_routes())
def test_other_roles_are_refused_on_every_resident_route(route, method, role):
    client = client_for(account_of(role))
    before = _written()

    response = client.generic(method, _path(route), "{}", content_type="application/json")

    error = assert_error(response, 403, "residents_only")
    assert error["details"] == {"role": role}
    assert _written() == before


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "method"), resident_routes())
def test_no_credentials_on_a_resident_route_is_still_a_401(api, route, method):
    response = api.generic(method, _path(route), "{}", content_type="application/json")

    assert_error(response, 401, "not_authenticated")


@pytest.mark.django_db
def test_the_schema_documents_the_403_of_every_resident_route():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]

    for route, method in resident_routes():
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        path = path.replace("{pk}", "{id}") if path not in paths else path
        operation = paths[path][method.lower()]
        assert "403" in operation["responses"], (route, method)


@pytest.mark.django_db
def test_merchant_staff_posting_a_claim_earn_nothing(metro, ledger_is_consistent):
    staff = account_of(User.Role.MERCHANT_STAFF)
    access = obtain_tokens(staff.email)["access"]  # staff sign in where residents do

    response = bearer(access).post("/api/v1/claims", claim_payload("metro", 10), format="json")

    assert_error(response, 403, "residents_only")
    assert not Claim.objects.exists() and not Transfer.objects.exists()
    ledger_is_consistent()


@pytest.mark.django_db
def test_residents_still_claim_and_read_their_ledger(auth_api, metro, ledger_is_consistent):
    assert auth_api.post("/api/v1/claims", claim_payload("metro", 1), format="json").status_code
    assert auth_api.get("/api/v1/ledger").json()["results"][0]["amount_g"] > 0
    assert auth_api.put("/api/v1/me/consents/transit_card").status_code == 200
    ledger_is_consistent()


@pytest.mark.django_db
@pytest.mark.parametrize("role", NON_RESIDENTS)
def test_every_account_keeps_its_profile_export_erasure_and_consent_withdrawal(role):
    user = account_of(role)
    client = client_for(user)

    me = client.get("/api/v1/me")
    refused = client.put("/api/v1/me/consents/transit_card", HTTP_ACCEPT_LANGUAGE="zh-Hans")

    assert me.status_code == 200 and me.json()["available_g"] == 0
    assert not Account.objects.filter(user=user).exists()  # reading opened no account
    assert client.patch("/api/v1/me", {"display_name": "Till 3"}, format="json").status_code == 200
    assert client.get("/api/v1/me/export").status_code == 200
    assert client.get("/api/v1/me/consents").status_code == 200
    assert client.delete("/api/v1/me/consents/transit_card").status_code == 204
    assert assert_error(refused, 403, "residents_only")["message"].startswith("仅居民账户")
    assert (
        client.delete(
            "/api/v1/me", {"password": "correct horse battery"}, format="json"
        ).status_code
        == 204
    )


# --- the services refuse them too (defence in depth) --------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", NON_RESIDENTS)
def test_the_claim_and_ledger_services_refuse_other_roles(role, metro):
    user = account_of(role)

    with pytest.raises(NotAResident):
        claim_submit(user=user, behaviour_code="metro", quantity=1, idempotency_key=new_key())
    with pytest.raises(NotAResident):
        ledger_award(
            user=user,
            amount_g=100,
            category="green_travel",
            idempotency_key=new_key(),
            description="a gift",
            expires_at=timezone.now() + timedelta(days=30),
        )
    with pytest.raises(NotAResident):
        appeal_report_missed(
            user=user,
            behaviour_code="metro",
            quantity=1,
            occurred_at=timezone.now(),
            reason="my trip",
            idempotency_key=new_key(),
        )
    assert _written() == (0, 0, 0, 0, 0, 0, 0)


@pytest.mark.django_db
def test_a_refused_claim_cannot_be_appealed_once_its_owner_is_staff(resident, metro):
    claim = RefusedClaimFactory(user=resident, behaviour=metro)
    becomes(resident, User.Role.MERCHANT_STAFF)

    with pytest.raises(NotAResident):
        appeal_contest(user=resident, claim_id=claim.pk, reason="why?", idempotency_key=new_key())
    assert not Appeal.objects.exists()


@pytest.mark.django_db
def test_linking_a_card_is_refused_to_staff_and_grants_no_consent():
    staff = account_of(User.Role.MERCHANT_STAFF)

    with pytest.raises(NotAResident):
        transit_card_link(user=staff, card_number=CARD, consent=True)
    assert not TransitCard.objects.exists() and not Consent.objects.exists()


@pytest.mark.django_db
def test_approving_a_claim_whose_owner_became_staff_credits_nothing(resident, metro):
    claim, _ = claim_submit(
        user=resident,
        behaviour_code="metro",
        quantity=1,
        idempotency_key=new_key(),
        force_review="check it",
    )
    becomes(resident, User.Role.MERCHANT_STAFF)
    reviewer = UserFactory(role=User.Role.ADMINISTRATOR, is_staff=True)

    with pytest.raises(NotAResident):
        claim_review(claim_id=claim.pk, reviewer=reviewer, approve=True)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW and not Transfer.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "released"), [(User.Role.RESIDENT, 1), (User.Role.MERCHANT_STAFF, 0)]
)
def test_held_claims_are_released_to_residents_only(resident, metro, role, released):
    claim, _ = claim_submit(
        user=resident, behaviour_code="metro", quantity=1, idempotency_key=new_key(),
        force_review="held below",
    )  # fmt: skip
    Claim.objects.filter(pk=claim.pk).update(
        status=ClaimStatus.HELD, held_until=timezone.now() - timedelta(minutes=1)
    )
    if role != User.Role.RESIDENT:
        becomes(resident, role)

    assert claims_release_held() == released  # and the job did not stop on the staff's claim
    assert Transfer.objects.exists() is bool(released)


# --- the partner feeds credit no one but residents ------------------------------------------


@pytest.mark.django_db
def test_taps_of_a_card_whose_holder_became_staff_wait_for_a_resident(
    transit, operator, resident, ledger_is_consistent
):
    linked(resident)
    becomes(resident, User.Role.MERCHANT_STAFF)
    start = ago(hours=2)

    body = pushed(
        operator,
        [
            tap("m-jiedaokou", "in", start),
            tap("m-wuchang-railway-station", "out", start + timedelta(minutes=18)),
        ],
    )

    assert body["trips"]["created"] == 1 and body["trips"]["claims"] == 0
    assert body["trips"]["awaiting_link"] == 1
    assert Trip.objects.get().status == TripStatus.AWAITING_LINK
    assert not Claim.objects.exists() and not Transfer.objects.exists()
    ledger_is_consistent()


@pytest.mark.django_db
def test_events_for_an_account_whose_holder_became_staff_wait_for_a_resident(
    auth_api, resident, bike_partner, ledger_is_consistent
):
    assert link(auth_api, bike_partner).status_code == 200
    becomes(resident, User.Role.INSTITUTION_MEMBER)

    body = push(bike_partner, [ride()]).json()

    assert body["accepted"] == 1 and body["results"][0]["claim_status"] == "awaiting_link"
    assert not Claim.objects.exists() and not Transfer.objects.exists()
    ledger_is_consistent()


# --- the balance socket -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", NON_RESIDENTS)
def test_the_balance_socket_is_closed_4403_to_other_roles(role):
    access = obtain_tokens(account_of(role).email)["access"]

    async def run():
        ws = socket(access)
        result = await ws.connect()
        await ws.disconnect()
        return result

    assert run_async(run) == (False, 4403)
    assert not Account.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_open_socket_closes_4403_once_its_resident_becomes_staff():
    resident = UserFactory()
    access = obtain_tokens(resident.email)["access"]

    async def run():
        ws = socket(access)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=5))["type"] == "balance"
        await sync_to_async(becomes)(resident, User.Role.MERCHANT_STAFF)
        await ws.send_json_to({"type": "snapshot"})
        return await ws.receive_output(timeout=5)

    assert run_async(run) == {"type": "websocket.close", "code": 4403}
