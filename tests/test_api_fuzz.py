"""A property-based fuzz of the whole API from its own OpenAPI description (schemathesis):
every operation gets generated requests, valid and invalid, as a signed-in resident (and, for
the partner endpoints, as a partner signing each generated body), and every answer must be
no server error and match the description: its status, its content type, its body schema.

The published description ends each operation with a `default` error response, which would
let any status pass; the fuzz drops it, so each status an operation answers must be listed
explicitly (carbon.api.schema derives them from the view).

Budget: CARBON_FUZZ_EXAMPLES generated requests per operation and mode (default below), with a
fixed seed (CARBON_FUZZ_SEED) so CI is repeatable; raise both locally to search wider. It runs
in both CI passes: SQLite and PostgreSQL refuse different things (NUL characters, integer
ranges, locks), and each backend has answered a 500 the other did not.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.core import NotSet

from carbon.adapters.transit.cards import card_hash
from carbon.models import ConsentScope, Partner
from carbon.services import people
from carbon.services.appeals import appeal_contest
from carbon.services.partners import partner_create
from tests.carbon.api_helpers import bearer, new_key, signed_headers
from tests.carbon.factories import (
    BehaviourFactory,
    CommunityFactory,
    EmissionFactorFactory,
    RefusedClaimFactory,
    UserFactory,
)

EXAMPLES = int(os.environ.get("CARBON_FUZZ_EXAMPLES", "100"))
SEED = int(os.environ.get("CARBON_FUZZ_SEED", "20261203"))

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES,
            "database": "none",
            "allow-x00": True,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
        },
    }
)


def api_description() -> dict:
    """The published OpenAPI description, as clients download it, minus `default` answers."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    description = json.loads(JSONRenderer().render(generated))
    for operations in description["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("default", None)
    return description


@pytest.fixture
def fuzz_world(db, settings):
    """A resident with something in every list (claims in each state, appeals of both kinds,
    ledger entries, consents, a card, a partner link), partners of both kinds, and the
    credentials the fuzz signs in with."""
    # No throttling: a login throttled after ten tries would hide the view behind a 429.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    community = CommunityFactory(code="jianghan-1")
    resident = UserFactory(email="fuzz@example.org", community=community)
    metro = BehaviourFactory(
        code="metro",
        unit="km",
        evidence_types=["transit", "self"],
        consent_scope="transit_card",
        max_quantity=Decimal("120"),
    )
    EmissionFactorFactory(behaviour=metro, grams_per_unit=Decimal("78.4"))
    bike = BehaviourFactory(code="bike-share", unit="km", consent_scope="bike_share")
    EmissionFactorFactory(behaviour=bike, grams_per_unit=Decimal("93.3"))
    platform = partner_create(name="QingJu", kind=Partner.Kind.PLATFORM)
    platform.partner.behaviours.add(bike)
    operator = partner_create(name="Wuhan Metro", kind=Partner.Kind.TRANSIT_OPERATOR)
    operator.partner.behaviours.add(metro)

    access = str(RefreshToken.for_user(resident).access_token)
    client = bearer(access)
    people.consent_grant(user=resident, scope="transit_card")
    people.consent_grant(user=resident, scope="bike_share")
    client.post("/api/v1/me/transit-cards", {"card_number": "6227 0012 3456 7890"}, format="json")
    client.post(
        "/api/v1/me/partner-links",
        {"partner": platform.partner.pk, "external_ref": "qj-42"},
        format="json",
    )
    when = timezone.now() - timedelta(hours=2)
    for quantity in ("3.5", "12"):
        response = client.post(
            "/api/v1/claims",
            {
                "behaviour": "metro",
                "quantity": quantity,
                "idempotency_key": new_key(),
                "occurred_at": when.isoformat(),
            },
            format="json",
        )
        assert response.status_code == 201, response.content
    refused = RefusedClaimFactory(user=resident, behaviour=metro, occurred_at=when)
    appeal_contest(
        user=resident, claim_id=refused.pk, reason="It happened.", idempotency_key=new_key()
    )
    client.post(
        "/api/v1/appeals",
        {
            "behaviour": "metro",
            "quantity": "4",
            "occurred_at": (when - timedelta(days=1)).isoformat(),
            "reason": "Never credited.",
            "idempotency_key": new_key(),
        },
        format="json",
    )
    # As Django's test client does: the requests run inside the test's transaction, which
    # closing "old" connections at the end of each request would cut (PostgreSQL).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield {"access": access, "platform": platform, "operator": operator}
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# Built at collection (pytest-django has set Django up by then; no database is needed). Not
# schemathesis.pytest.from_fixture: its lazy loader breaks on pytest 9.2 (request.node._nodeid).
schema = schemathesis.openapi.from_dict(api_description(), config=CONFIG)
schema.app = get_wsgi_application()

# Random slugs and hashes rarely name anything that exists; now and then, name what the world
# holds, so that requests get past "unknown" into the rules, the ledger and the feeds.
BEHAVIOURS = st.sampled_from(["metro", "bike-share"])
CARD_HASH = card_hash("6227001234567890")
QUANTITIES = st.decimals(min_value="0.1", max_value="150", places=1).map(str)
RECENTLY = st.integers(min_value=1, max_value=10 * 24 * 60).map(
    lambda minutes: (timezone.now() - timedelta(minutes=minutes)).isoformat()
)
# Text that has broken a database or a parser somewhere, besides whatever Hypothesis draws.
NASTY_TEXT = st.sampled_from(["\x00", "a\x00b", "\ud800", "\U0001f333", "\u202e", "%00", ""])
TEXT = NASTY_TEXT | st.text(max_size=40)
ANY = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
PARTNER_EVENT = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=20),
        "behaviour": BEHAVIOURS,
        "user_ref": st.sampled_from(["qj-42"]) | st.text(max_size=10),
        "occurred_at": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()) | ANY,
    },
    optional={"distance_km": ANY, "duration_s": ANY, "quantity": ANY, "steps": ANY},
)


@schema.hook("flatmap_body")
def _real_names_now_and_then(context, body):
    if not isinstance(body, dict):
        return st.just(body)
    # Hypothesis leans towards a one_of's first branches: the realistic variants come first.
    variants = []
    if "behaviour" in body:
        variants.append(BEHAVIOURS.map(lambda code: {**body, "behaviour": code}))
        variants.append(
            st.fixed_dictionaries(
                {"behaviour": BEHAVIOURS, "quantity": QUANTITIES, "occurred_at": RECENTLY}
            ).map(lambda real: {**body, **real})
        )
        if context.operation.path == "/api/v1/claims" and not isinstance(
            body.get("evidence"), str
        ):  # JSON, not the form: a self declaration's free-text note, stored as jsonb
            variants.append(
                st.fixed_dictionaries(
                    {
                        "behaviour": BEHAVIOURS,
                        "quantity": QUANTITIES,
                        "occurred_at": RECENTLY,
                        "evidence": st.fixed_dictionaries({"type": st.just("self"), "note": TEXT}),
                    }
                ).map(lambda real: {**body, **real})
            )
    if context.operation.path.endswith("/partners/events"):
        variants.append(
            st.lists(PARTNER_EVENT, min_size=1, max_size=5).map(lambda e: {"events": e})
        )
    if isinstance(body.get("taps"), list) and body["taps"]:
        variants.append(
            st.just(
                {
                    "taps": [
                        {**tap, "card_hash": CARD_HASH} if isinstance(tap, dict) else tap
                        for tap in body["taps"]
                    ]
                }
            )
        )
    return st.one_of([*variants[::-1], st.just(body)])


_SIGNED = itertools.count()


def _signed(case, credential) -> dict:
    """Headers and the exact body bytes of a partner request, signed like a partner would."""
    if isinstance(case.body, NotSet):
        body = b""
    elif isinstance(case.body, bytes):  # a raw body of the negative mode
        body = case.body
    else:
        body = json.dumps(case.body).encode()
    # A fresh timestamp for each request (inside the tolerance), so that two generated
    # requests with the same body are two requests, not a replay.
    timestamp = int(time.time()) - next(_SIGNED) % 250
    headers = signed_headers(
        key_id=credential.key_id, secret=credential.secret, body=body, timestamp=timestamp
    )
    return {
        "headers": {
            "X-Partner-Key": headers["HTTP_X_PARTNER_KEY"],
            "X-Timestamp": headers["HTTP_X_TIMESTAMP"],
            "X-Signature": headers["HTTP_X_SIGNATURE"],
            **({"Content-Type": case.media_type} if case.media_type else {}),
        },
        "data": body,
    }


@pytest.mark.fuzz
@schema.parametrize()
# The world is shared by an operation's generated requests on purpose: what one creates, the
# next may read, conflict with or be throttled by, as on a live server.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_api_answers_every_generated_request_as_described(case, fuzz_world):
    security = case.operation.definition.raw.get("security") or []
    schemes = {name for requirement in security for name in requirement}
    if "PartnerSignature" in schemes:
        credential = (
            fuzz_world["operator"]
            if case.path.startswith("/api/v1/partners/transit")
            else fuzz_world["platform"]
        )
        kwargs = _signed(case, credential)
        response = case.call(headers=kwargs["headers"], data=kwargs["data"])
    else:
        headers = {"Authorization": f"Bearer {fuzz_world['access']}"} if schemes else {}
        response = case.call(headers=headers)
    case.validate_response(response)


# --- the description the fuzz holds the API to ----------------------------------------------


def _operations() -> dict[str, dict]:
    described = api_description()
    return {
        f"{method.upper()} {path}": operation
        for path, operations in described["paths"].items()
        for method, operation in operations.items()
    }


def _errors(operation: dict) -> set[int]:
    return {int(status) for status in operation["responses"] if int(status) >= 400}


def test_each_operation_lists_the_error_statuses_its_view_can_answer():
    operations = _operations()

    assert _errors(operations["GET /api/v1/me"]) == {401}
    assert _errors(operations["GET /api/v1/behaviours"]) == {401}  # a bad token, even here
    # Resident-only operations: 403 residents_only for every other role.
    assert _errors(operations["GET /api/v1/claims"]) == {400, 401, 403}
    assert _errors(operations["GET /api/v1/claims/{id}"]) == {400, 401, 403, 404}
    assert _errors(operations["POST /api/v1/claims"]) == {400, 401, 403, 409, 413, 415, 429}
    assert _errors(operations["POST /api/v1/auth/register"]) == {400, 409, 413, 415, 429}
    assert _errors(operations["POST /api/v1/auth/token"]) == {400, 401, 413, 415, 429}
    assert _errors(operations["POST /api/v1/partners/events"]) == {400, 401, 409, 413, 415}
    assert _errors(operations["POST /api/v1/partners/transit/taps"]) == {
        400,
        401,
        403,
        409,
        413,
        415,
    }
    for label, operation in operations.items():
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                # The envelope, or a view's own declared refinement of it.
                content = response["content"]["application/json"]["schema"]
                assert set(content) == {"$ref"}, (label, status)
    assert operations["GET /api/v1/me"]["responses"]["401"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/Error"}


def test_fields_that_render_null_are_nullable_and_parameters_have_their_ranges():
    described = api_description()
    components = described["components"]["schemas"]
    operations = _operations()

    assert components["Claim"]["properties"]["factor_version"]["nullable"] is True
    assert components["Claim"]["properties"]["decided_at"]["nullable"] is True
    assert components["Me"]["properties"]["community"]["nullable"] is True
    assert components["MeWithBalance"]["properties"]["district"]["nullable"] is True
    parameters = {p["name"]: p["schema"] for p in operations["GET /api/v1/ledger"]["parameters"]}
    assert parameters["page_size"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 200,
        "default": 50,
    }
    assert parameters["cursor"] == {"type": "string", "minLength": 1}
    scope = operations["PUT /api/v1/me/consents/{scope}"]["parameters"][0]["schema"]
    assert set(scope["enum"]) == set(ConsentScope.values)
    card = operations["DELETE /api/v1/me/transit-cards/{id}"]["parameters"][0]["schema"]
    assert card["minimum"] == 1 and card["maximum"] == 2**63 - 1
    # Erasing my account reads my password from the body; the description says so.
    assert "requestBody" in operations["DELETE /api/v1/me"]
    assert "photo" in components["ClaimCreateFormRequest"]["properties"]
