"""The error catalogue: every code the API answers is an ErrorCode with one HTTP status, every
error class takes its code (and so its status) from there, none is defined in a view, and the
OpenAPI schema lists them all."""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import jwt
import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.exceptions import APIException
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from carbon.api import errors as api_errors
from carbon.errors import DomainError, ErrorCode
from carbon.models import Consent, Partner
from carbon.services.partners import partner_create
from config.asgi import application
from tests.carbon.api_helpers import assert_error, partner_post, signed_headers
from tests.carbon.factories import BehaviourFactory, EmissionFactorFactory

PACKAGES = ("carbon", "rewards", "biodiversity", "zerowaste")


def domain_error_classes() -> list[type[DomainError]]:
    """Every DomainError subclass in the code base, after importing every module of it."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            importlib.import_module(module.name)
    found, todo = [], [DomainError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def instance_of(cls: type[DomainError]) -> DomainError:
    return cls("A message.", details={})


# --- one status per code ----------------------------------------------------------------------


def test_every_code_is_listed_once_with_one_status_and_a_message():
    values = [code.value for code in ErrorCode]

    assert len(values) == len(set(values))
    for code in ErrorCode:
        assert code == code.value and ErrorCode(code.value) is code
        assert isinstance(code.status, int) and 400 <= code.status <= 599, code
        assert code.default_message.strip(), code


def test_no_code_is_answered_with_two_statuses():
    """Collect the status every source of errors gives each code (domain classes, the DRF
    mapping, the Django handlers): each code has exactly the catalogue's one status."""
    seen: dict[str, set[int]] = defaultdict(set)
    for cls in domain_error_classes():
        error = instance_of(cls)
        seen[error.code.value].add(error.status)
    for drf_class, code in api_errors._DRF_CODES.items():
        seen[code.value].add(drf_class.status_code)
    for handler in (api_errors.json_400, api_errors.json_403, api_errors.json_404):
        response = handler(None, None)
        seen[json.loads(response.content)["error"]["code"]].add(response.status_code)
    response = api_errors.json_500(None)
    seen[json.loads(response.content)["error"]["code"]].add(response.status_code)

    assert "consent_required" in seen and "not_found" in seen and "server_error" in seen
    assert {code: statuses for code, statuses in seen.items() if len(statuses) > 1} == {}
    assert {code: statuses for code, statuses in seen.items()} == {
        code: {ErrorCode(code).status} for code in seen
    }


def test_every_error_class_takes_its_code_and_status_from_the_catalogue():
    classes = domain_error_classes()
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in classes}

    # The walk found the classes of every slice (so the checks below looked at them).
    assert {
        "carbon.errors.InsufficientFunds",
        "carbon.services.people.EmailTaken",
        "carbon.adapters.transit.cards.TransitConsentRequired",
        "carbon.adapters.batch.rows.BatchTooLarge",
        "carbon.adapters.partner_events.links.ConsentRequired",
        "carbon.adapters.photo.images.PhotoTooLarge",
    } <= names
    for cls in classes:
        assert isinstance(cls.code, ErrorCode), cls
        own = [base for base in cls.__mro__ if issubclass(base, DomainError)]
        assert not any("status" in vars(base) for base in own if base is not DomainError), cls
        error = instance_of(cls)
        assert error.status == ErrorCode(error.code).status, cls


def test_no_error_class_is_defined_in_a_view_module():
    in_views = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in domain_error_classes()
        if cls.__module__.startswith("carbon.api.") or cls.__module__.rsplit(".", 1)[-1] == "api"
    ]

    assert in_views == []


def test_a_class_cannot_set_a_status_of_its_own_or_a_code_outside_the_catalogue():
    with pytest.raises(TypeError):

        class Teapot(DomainError):
            code = ErrorCode.INVALID
            status = 418

    with pytest.raises(TypeError):

        class Loose(DomainError):
            code = "loose_code"

    with pytest.raises(TypeError):
        DomainError("No code at all.")
    one_off = DomainError("One off.", code=ErrorCode.INVALID)
    assert (one_off.code, one_off.status, one_off.message) == (ErrorCode.INVALID, 400, "One off.")


def test_the_envelope_takes_only_catalogue_codes():
    with pytest.raises(TypeError):
        api_errors.error_body("consent_required", "A string is not a code.")

    body = api_errors.error_body(ErrorCode.CONSENT_REQUIRED)

    assert body == {
        "error": {
            "code": "consent_required",
            "message": ErrorCode.CONSENT_REQUIRED.default_message,
            "details": {},
        }
    }


def test_an_unmapped_api_exception_answers_a_generic_catalogue_code():
    class Odd(APIException):
        status_code = 418

    response = api_errors.exception_handler(Odd("odd"), {})

    assert response.status_code == 400
    assert response.data["error"]["code"] == "bad_request"
    assert api_errors.exception_handler(APIException(), {}).data["error"]["code"] == (
        "server_error"
    )


def test_a_partner_batch_that_is_not_a_list_is_invalid_not_a_generic_error(db):
    issued = partner_create(name="QingJu", kind="platform")

    response = partner_post(
        "/api/v1/partners/events",
        key_id=issued.key_id,
        secret=issued.secret,
        payload={"events": {"event_id": "e1"}},
    )

    error = assert_error(response, 400, "invalid")
    assert "events" in error["details"]


# --- the OpenAPI description ----------------------------------------------------------------


def test_every_catalogue_code_is_in_the_openapi_description():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]

    codes = components["ErrorCodeEnum"]
    assert codes["enum"] == [code.value for code in ErrorCode]
    for code in ErrorCode:
        assert f"* `{code.value}` - {code.status}: " in codes["description"], code
    envelope = components["Error"]["properties"]["error"]
    assert envelope["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCodeEnum"}
    assert envelope["required"] == ["code", "message", "details"]
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert operations
    for operation in operations:
        default = operation["responses"]["default"]
        assert default["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }


# --- consent_required: one status from both places that raise it ----------------------------


def test_consent_required_answers_the_same_status_for_a_card_and_a_partner_account(resident):
    client = APIClient()
    client.force_authenticate(resident)
    bike = BehaviourFactory(code="bike-share", unit="km", consent_scope="bike_share")
    EmissionFactorFactory(behaviour=bike, grams_per_unit=Decimal("93.3"))
    partner = partner_create(name="QingJu", kind="platform").partner
    partner.behaviours.add(bike)

    card = client.post(
        "/api/v1/me/transit-cards", {"card_number": "6227 0012 3456 7890"}, format="json"
    )
    account = client.post(
        "/api/v1/me/partner-links", {"partner": partner.pk, "external_ref": "u-42"}, format="json"
    )

    assert_error(card, 409, "consent_required")
    assert_error(account, 409, "consent_required")
    assert not Consent.objects.filter(user=resident).exists()


# --- batch_too_large: one entry for both feeds ------------------------------------------------


def _signed_post(path: str, issued, payload: dict):
    body = json.dumps(payload).encode()
    headers = signed_headers(key_id=issued.key_id, secret=issued.secret, body=body)
    return APIClient().generic("POST", path, body, content_type="application/json", **headers)


def test_both_feeds_answer_an_oversized_batch_with_the_one_batch_too_large(db):
    from carbon.adapters.partner_events.feed import MAX_BATCH
    from carbon.adapters.transit.feed import MAX_BATCH_TAPS

    platform = partner_create(name="QingJu", kind="platform")
    operator = partner_create(name="Wuhan Metro", kind=Partner.Kind.TRANSIT_OPERATOR)

    events = _signed_post("/api/v1/partners/events", platform, {"events": [{}] * (MAX_BATCH + 1)})
    taps = _signed_post(
        "/api/v1/partners/transit/taps", operator, {"taps": [{}] * (MAX_BATCH_TAPS + 1)}
    )

    assert_error(events, 413, "batch_too_large")
    assert_error(taps, 413, "batch_too_large")


# --- the balance socket: any bad token closes with 4401 -------------------------------------


def _forged(key: str, algorithm: str = "HS256") -> str:
    claims = {
        "token_type": "access",
        "user_id": 1,
        "jti": "x",
        "exp": int((timezone.now() + timedelta(minutes=5)).timestamp()),
    }
    return jwt.encode(claims, key, algorithm=algorithm)


@pytest.fixture
def _fresh_channel_layer():
    """A channel layer's queues and pools belong to one event loop; each test runs its own."""
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_fresh_channel_layer")
@pytest.mark.parametrize(
    "token",
    [
        "not.a.jwt",
        "%FF%FE%00",
        "a" * 5000,
        "eyJhbGciOiJub25lIn0.eyJ1c2VyX2lkIjoxfQ.",  # alg "none"
        "forged",
        "unknown-user",
    ],
)
def test_a_bad_token_closes_the_balance_socket_with_4401(token):
    if token == "forged":
        token = _forged("not-our-secret-not-our-secret-not-our-secret")
    elif token == "unknown-user":
        access = AccessToken()  # signed with our key, for a resident that does not exist
        access["user_id"] = 987654321
        token = str(access)

    async def run():
        ws = WebsocketCommunicator(
            application,
            f"/ws/v1/balance?token={token}",
            headers=[(b"origin", b"http://testserver")],
        )
        try:
            return await ws.connect()
        finally:
            await ws.disconnect()
            await sync_to_async(connections.close_all)()

    assert asyncio.run(run()) == (False, 4401)
