"""Anything a client can send gets an answer in the error envelope with a stable code, never
a 500 and never a bare 400: absurdly nested JSON, strings the database cannot store, absurd
signature timestamps, edited cursors and page sizes, broken multipart bodies, wrong content
types, oversized bodies. And the classes, not only the instances: every view parses with the
API's own parsers, and every cursor-paginated list checks its cursor."""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.pagination import CursorPagination
from rest_framework.settings import api_settings
from rest_framework.test import APIClient
from rest_framework.views import APIView

from carbon.api import parsing
from carbon.models import Appeal, Claim, Partner, User
from carbon.services.partners import partner_create
from tests.carbon.api_helpers import (
    assert_error,
    claim_payload,
    client_for,
    new_key,
    signed_headers,
)
from tests.rewards.factories import StaffFactory

NESTED_LIST = b"[" * 100_000 + b"]" * 100_000
NESTED_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


def api_views() -> list[tuple[str, type[APIView]]]:
    """Every DRF view the URLconf routes to, with its route."""
    found = []

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                view = getattr(entry.callback, "cls", None)
                if isinstance(view, type) and issubclass(view, APIView):
                    found.append((prefix + str(entry.pattern), view))

    walk(get_resolver().url_patterns)
    return found


@pytest.fixture
def platform(db):
    return partner_create(name="QingJu", kind=Partner.Kind.PLATFORM)


@pytest.fixture
def operator(db):
    return partner_create(name="Wuhan Metro", kind=Partner.Kind.TRANSIT_OPERATOR)


def signed_post(path: str, credential, body: bytes, *, timestamp=None):
    headers = signed_headers(
        key_id=credential.key_id, secret=credential.secret, body=body, timestamp=timestamp
    )
    return APIClient().generic("POST", path, body, content_type="application/json", **headers)


# --- 1. deep nesting: one bounded parser for every JSON body -----------------------------------

RESIDENT_JSON_ENDPOINTS = [
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/auth/token/refresh"),
    ("post", "/api/v1/claims"),
    ("post", "/api/v1/appeals"),
    ("patch", "/api/v1/me"),
    ("delete", "/api/v1/me"),
    ("post", "/api/v1/me/transit-cards"),
    ("post", "/api/v1/me/partner-links"),
]


@pytest.mark.parametrize("body", [NESTED_LIST, NESTED_OBJECT], ids=["list", "object"])
@pytest.mark.parametrize(("method", "path"), RESIDENT_JSON_ENDPOINTS)
def test_deeply_nested_json_is_a_malformed_request(auth_api, method, path, body):
    response = getattr(auth_api, method)(path, body, content_type="application/json")

    assert_error(response, 400, "malformed_request")


@pytest.mark.parametrize("path", ["/api/v1/partners/events", "/api/v1/partners/transit/taps"])
def test_deeply_nested_json_from_a_signed_partner_is_a_malformed_request(operator, path):
    # The signature is right, so the body reaches the parser.
    assert_error(signed_post(path, operator, NESTED_LIST), 400, "malformed_request")


def test_nesting_the_stdlib_parser_survives_still_breaks_nothing_later(auth_api, metro):
    """900 levels parse with json.loads, then blow the stack in validation, a deep copy or a
    hash; the API refuses them before that, inside a claim's evidence too."""
    deep = "[" * 900 + "]" * 900
    body = json.dumps(claim_payload("metro", 1))[:-1] + f', "evidence": {{"trip": {deep}}}}}'

    response = auth_api.post("/api/v1/claims", body, content_type="application/json")

    assert_error(response, 400, "malformed_request")
    assert not Claim.objects.exists()


def test_deep_nesting_in_a_multipart_evidence_field_is_refused(auth_api, metro):
    fields = {**claim_payload("metro", 1), "evidence": "[" * 100_000 + "]" * 100_000}

    response = auth_api.post("/api/v1/claims", fields, format="multipart")

    assert_error(response, 400, "invalid")
    assert not Claim.objects.exists()


def test_nesting_up_to_the_limit_is_still_parsed(auth_api):
    body = '{"display_name": "Deep", "ignored": ' + "[" * 63 + "]" * 63 + "}"

    response = auth_api.patch("/api/v1/me", body, content_type="application/json")

    assert response.status_code == 200, response.content
    assert response.json()["display_name"] == "Deep"


def test_the_depth_check_ignores_brackets_inside_strings():
    assert parsing.json_depth_exceeds('["' + "[" * 500 + '"]') is False
    assert parsing.json_depth_exceeds('["\\\\", ' + "[" * 65 + "]" * 65 + "]") is True
    assert parsing.json_depth_exceeds('["\\"' + "[" * 500 + '"]') is False
    assert parsing.json_depth_exceeds("[" * 64 + "]" * 64) is False
    assert parsing.json_depth_exceeds("[" * 65 + "]" * 65) is True
    assert parsing.json_depth_exceeds('{"a":' * 65 + "1" + "}" * 65) is True


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\udc00\\ud800"])
def test_unpaired_surrogates_are_not_text_and_refused(auth_api, escape):
    body = '{"email": "a@example.org", "password": "long enough pass", "display_name": "x%s"}'

    response = auth_api.post(
        "/api/v1/auth/register", body % escape, content_type="application/json"
    )

    assert_error(response, 400, "malformed_request")
    assert not User.objects.filter(email="a@example.org").exists()


def test_a_nul_in_free_form_evidence_is_invalid_not_a_database_error(auth_api, own_bag):
    """PostgreSQL's jsonb holds no NUL: the evidence is refused before it is stored."""
    body = json.dumps(claim_payload("own-bag", 1, evidence={"type": "self", "note": "a\x00b"}))

    response = auth_api.post("/api/v1/claims", body, content_type="application/json")

    error = assert_error(response, 400, "invalid")
    assert list(error["details"]) == ["evidence"]
    assert not Claim.objects.exists()


def test_a_nul_in_a_text_field_is_invalid(auth_api):
    response = auth_api.patch(
        "/api/v1/me", json.dumps({"display_name": "a\x00b"}), content_type="application/json"
    )

    error = assert_error(response, 400, "invalid")
    assert list(error["details"]) == ["display_name"]


def test_a_surrogate_pair_is_one_character_and_accepted(api, db):
    body = '{"email": "b@example.org", "password": "long enough pass", "display_name": "\\ud83c\\udf33"}'

    response = api.post("/api/v1/auth/register", body, content_type="application/json")

    assert response.status_code == 201, response.content
    assert response.json()["display_name"] == "\N{DECIDUOUS TREE}"


@pytest.mark.parametrize("body", ['{"quantity": NaN}', '{"quantity": Infinity}', "\xff{"])
def test_non_json_numbers_and_bad_bytes_are_malformed(auth_api, body):
    response = auth_api.post(
        "/api/v1/claims", body.encode("latin-1"), content_type="application/json"
    )

    assert_error(response, 400, "malformed_request")


def test_every_view_parses_only_with_the_apis_own_parsers():
    """A view may refine them (a subclass), never go around them."""
    own = (parsing.JSONParser, parsing.MultiPartParser)
    assert set(api_settings.DEFAULT_PARSER_CLASSES) == {parsing.JSONParser}
    views = api_views()
    assert len(views) > 20  # the walk found the routes
    for route, view in views:
        for parser in view.parser_classes:
            assert issubclass(parser, own), (route, parser)


# --- 2. absurd X-Timestamp: invalid_signature, before any query --------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        str(10**400),
        "9" * 5000,
        "1e999",
        "nan",
        "inf",
        "-0",
        "-1",
        "+1700000000",
        "\u0663",  # an Arabic-Indic three, which int() would take
        "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",
        " 1700000000",
        "1700000000\n",
        "1_700_000_000",
        "0x10",
        "1.7e9",
    ],
)
def test_an_absurd_timestamp_is_an_invalid_signature_without_a_query(
    platform, timestamp, django_assert_num_queries
):
    body = b"{}"
    headers = signed_headers(
        key_id=platform.key_id, secret=platform.secret, body=body, timestamp=int(time.time())
    )
    headers["HTTP_X_TIMESTAMP"] = timestamp

    with django_assert_num_queries(0):
        response = APIClient().generic(
            "POST", "/api/v1/partners/whoami", body, content_type="application/json", **headers
        )

    assert_error(response, 401, "invalid_signature")


@pytest.mark.parametrize("key_id", ["pk_\x00", "é" * 10, "k" * 65, "pk key"])
def test_an_absurd_key_id_is_an_invalid_signature_without_a_query(
    platform, key_id, django_assert_num_queries
):
    headers = signed_headers(key_id="x", secret=platform.secret, body=b"")
    headers["HTTP_X_PARTNER_KEY"] = key_id

    with django_assert_num_queries(0):
        response = APIClient().generic("POST", "/api/v1/partners/whoami", b"", **headers)

    assert_error(response, 401, "invalid_signature")


def test_a_sane_timestamp_still_signs_in(platform):
    response = signed_post("/api/v1/partners/whoami", platform, b"")

    assert response.status_code == 200, response.content


# --- 3. edited cursors and page sizes on every cursor-paginated list ---------------------------


def cursor_lists() -> list[str]:
    routes = [
        "/" + route
        for route, view in api_views()
        if issubclass(getattr(view, "pagination_class", None) or object, CursorPagination)
    ]
    return sorted(routes)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


EDITED_CURSORS = [
    "garbage",
    "!!!!",
    "\u00e9t\u00e9",
    b64(b"\xff\xfe\x00"),
    b64(b"o=-1&p=x"),
    b64(b"p=x"),
    b64(b"p=\x00"),
    b64(b"p=2026-01-01"),  # a time without its offset
    b64(b"p=0001-01-01 00:00:00+08:00"),  # before year 1 in UTC
    b64(b"p=9999-12-31 23:59:59-08:00"),  # after year 9999 in UTC
    b64(b"p=2026-13-45 99:99:99+00:00"),
    b64(b"r=abc"),
    b64(b"o=" + b"9" * 5000),
    "",
]


def test_the_cursor_lists_are_found():
    assert cursor_lists() == [
        "/api/v1/appeals",
        "/api/v1/biodiversity/sightings",
        "/api/v1/claims",
        "/api/v1/ledger",
        "/api/v1/merchant/redemptions",
        "/api/v1/merchant/settlements",
        "/api/v1/rewards/offers",
        "/api/v1/rewards/vouchers",
    ]


def client_for_list(path: str, resident_api):
    """The caller a list is for: the merchant API answers only a merchant's staff."""
    if path.startswith("/api/v1/merchant/"):
        return client_for(StaffFactory().user)
    return resident_api


@pytest.mark.parametrize("cursor", EDITED_CURSORS)
@pytest.mark.parametrize("path", cursor_lists())
def test_an_edited_cursor_is_a_400_on_every_cursor_list(auth_api, path, cursor):
    response = client_for_list(path, auth_api).get(path, {"cursor": cursor})

    error = assert_error(response, 400, "invalid")
    assert list(error["details"]) == ["cursor"]


@pytest.mark.parametrize("path", cursor_lists())
def test_a_huge_offset_is_an_empty_page_not_an_error(auth_api, path):
    response = client_for_list(path, auth_api).get(path, {"cursor": b64(b"o=99999999999999")})

    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "201", "1.5", "\u0663", "9" * 50, ""])
@pytest.mark.parametrize("path", ["/api/v1/claims", "/api/v1/ledger"])
def test_a_page_size_out_of_range_is_a_400(auth_api, path, page_size):
    response = auth_api.get(path, {"page_size": page_size})

    error = assert_error(response, 400, "invalid")
    assert list(error["details"]) == ["page_size"]


def test_a_cursor_from_a_next_link_still_works(auth_api, metro):
    for _ in range(3):
        assert (
            auth_api.post("/api/v1/claims", claim_payload("metro", 1), format="json").status_code
            == 201
        )
    first = auth_api.get("/api/v1/claims", {"page_size": 2}).json()
    second = auth_api.get(first["next"]).json()

    assert len(first["results"]) == 2 and len(second["results"]) == 1
    assert {c["id"] for c in first["results"]}.isdisjoint(c["id"] for c in second["results"])


# --- 4. multipart and content types -----------------------------------------------------------


MALFORMED_MULTIPART = [
    ("multipart/form-data", b"abc"),  # no boundary at all
    ("multipart/form-data; boundary=", b"abc"),
    ("multipart/form-data; boundary=B", b"--B\r\nContent-Disposition: form-data\r\n\r\nx"),
    ("multipart/form-data; boundary=B", b"--B\r\n\r\n\r\n--B--"),
    ("multipart/form-data; boundary=B", b"--B\r\nContent-Transfer-Encoding: base64\r\n"),
    ("multipart/form-data; boundary=" + "B" * 300, b"--" + b"B" * 300 + b"\r\n"),
]


@pytest.mark.parametrize("path", ["/api/v1/claims", "/api/v1/appeals"])
@pytest.mark.parametrize(("content_type", "body"), MALFORMED_MULTIPART)
def test_a_malformed_multipart_body_is_answered_in_the_envelope(auth_api, path, content_type, body):
    response = auth_api.generic("POST", path, body, content_type=content_type)

    # A boundary longer than the 70 characters MIME allows is not multipart/form-data at all.
    expected = {400: {"malformed_request", "invalid"}, 415: {"unsupported_media_type"}}
    assert response.status_code in expected, response.content
    code = response.json()["error"]["code"]
    assert code in expected[response.status_code]
    assert_error(response, response.status_code, code)
    assert not Claim.objects.exists() and not Appeal.objects.exists()


def test_a_multipart_body_without_boundary_reaches_the_app_through_daphne():
    """Daphne's Twisted request parsed multipart bodies itself and answered a bad one with a
    bare 400 before the app saw it; the ASGI entry point switches that off."""
    from daphne.http_protocol import HTTPFactory
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    import config.asgi  # noqa: F401  (the entry point Daphne loads)

    reached = []

    class Server:
        proxy_forwarded_address_header = None
        root_path = ""
        request_buffer_size = 8192

        def protocol_connected(self, protocol):
            pass

        def protocol_disconnected(self, protocol):
            pass

        def create_application(self, protocol, scope):
            reached.append(scope["path"])
            return None  # the test stops here: the app would answer

    protocol = HTTPFactory(Server()).buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(
        b"POST /api/v1/claims HTTP/1.1\r\nHost: testserver\r\n"
        b"Content-Type: multipart/form-data\r\nContent-Length: 3\r\n\r\nabc"
    )

    assert reached == ["/api/v1/claims"]
    assert b"400 Bad Request" not in transport.value()
    protocol.connectionLost(None)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=B",
        "application/octet-stream",
    ],
)
@pytest.mark.parametrize(
    "path", ["/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/me/transit-cards"]
)
def test_a_wrong_content_type_on_a_json_endpoint_is_415(auth_api, path, content_type):
    response = auth_api.generic("POST", path, b"--B--\r\n", content_type=content_type)

    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("charset", ["zlib_codec", "bz2", "base64", "utf-16"])
def test_a_json_body_in_an_unusable_charset_is_malformed(auth_api, charset):
    response = auth_api.generic(
        "POST",
        "/api/v1/auth/token",
        b'{"email": "a@example.org"}',
        content_type=f"application/json; charset={charset}",
    )

    assert_error(response, 400, "malformed_request")


# --- 5. oversized bodies: 413 request_too_large, whichever limit -------------------------------


def test_an_oversized_json_body_is_413(auth_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"email": "a@example.org", "password": "x" * 2000}).encode()

    response = auth_api.post("/api/v1/auth/register", body, content_type="application/json")

    error = assert_error(response, 413, "request_too_large")
    assert error["details"] == {"max_bytes": 1000}


def test_an_oversized_signed_body_is_413_before_the_signature_is_checked(platform, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = signed_post("/api/v1/partners/events", platform, b'{"events": ["' + b"x" * 2000)

    assert_error(response, 413, "request_too_large")


def test_too_many_form_fields_is_413(auth_api, settings, metro):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    fields = {**claim_payload("metro", 1), **{f"extra{i}": "x" for i in range(10)}}

    response = auth_api.post("/api/v1/claims", fields, format="multipart")

    error = assert_error(response, 413, "request_too_large")
    assert error["details"] == {"max_fields": 5}
    assert not Claim.objects.exists()


def test_too_many_files_is_413(auth_api, settings, metro):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = {f"file{i}": SimpleUploadedFile(f"{i}.jpg", b"x") for i in range(4)}

    response = auth_api.post(
        "/api/v1/claims", {**claim_payload("metro", 1), **files}, format="multipart"
    )

    error = assert_error(response, 413, "request_too_large")
    assert error["details"] == {"max_files": 2}


def test_the_body_limit_outside_drf_is_413_too(settings):
    """A view outside DRF (the admin) reading an oversized form: Django's own handler."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = APIClient().post(
        "/admin/login/", {"username": "x" * 500, "password": "y"}, format="multipart"
    )

    assert_error(response, 413, "request_too_large")


def test_idempotency_keys_are_still_checked_after_all_this(auth_api, metro):
    """A sanity check that the hardened parser hands normal bodies on unchanged."""
    key = new_key()
    first = auth_api.post(
        "/api/v1/claims", claim_payload("metro", 2, idempotency_key=key), format="json"
    )
    again = auth_api.post(
        "/api/v1/claims", claim_payload("metro", 2, idempotency_key=key), format="json"
    )

    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
