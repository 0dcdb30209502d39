"""Localisation: the same refusal answers in Simplified Chinese (the default, and for zh-CN,
zh-Hans, zh-TW) or in English (for en), with the same code and status; the admin and the
API docs' error descriptions follow Accept-Language; the zh_Hans catalogue translates every
message the code marks, and its committed .mo is its compilation."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import time
import uuid
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient

from carbon.errors import ErrorCode, RowError
from carbon.models import Partner, User
from carbon.services.partners import partner_create, sign

# The whole module runs with the project's own default language, not the suite's English.
pytestmark = pytest.mark.configured_language

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")

# Accept-Language as sent -> the language the answer must be in.
SENT = [
    (None, "zh-hans"),
    ("zh-CN", "zh-hans"),
    ("zh-Hans", "zh-hans"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-hans"),
    ("en", "en"),
    ("en-US,en;q=0.9", "en"),
    ("fr, en;q=0.5", "en"),  # no French: the next language the client takes
]


def _headers(accept_language: str | None) -> dict[str, str]:
    return {} if accept_language is None else {"HTTP_ACCEPT_LANGUAGE": accept_language}


def _error(response, status: int, code: str, language: str) -> dict:
    """The envelope with this code and status, labelled with the language it is in."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    assert response["Content-Language"] == language
    assert "Accept-Language" in response["Vary"]
    return body["error"]


# --- the same refusal, in either language --------------------------------------------------


@pytest.mark.parametrize("sent, language", SENT)
def test_a_catalogue_refusal_answers_in_the_request_language(auth_api, sent, language):
    response = auth_api.post(
        "/api/v1/claims",
        {"behaviour": "no-such-behaviour", "quantity": 1, "idempotency_key": str(uuid.uuid4())},
        format="json",
        **_headers(sent),
    )

    error = _error(response, 400, "unknown_behaviour", language)
    assert (
        error["message"]
        == {
            "zh-hans": "没有使用此代码的有效低碳行为。",
            "en": "No active behaviour has this code.",
        }[language]
    )
    assert error["details"] == {"behaviour": "no-such-behaviour"}


@pytest.mark.parametrize("sent, language", SENT)
def test_a_service_refusal_with_values_answers_in_the_request_language(
    auth_api, metro, sent, language
):
    response = auth_api.post(
        "/api/v1/claims",
        {"behaviour": "metro", "quantity": 500, "idempotency_key": str(uuid.uuid4())},
        format="json",
        **_headers(sent),
    )

    error = _error(response, 400, "invalid_quantity", language)
    pattern = {
        "zh-hans": r"“Metro ride”每次申报最多 120(\.0+)? km。",
        "en": r"At most 120(\.0+)? km per claim for Metro ride\.",
    }[language]
    assert re.fullmatch(pattern, error["message"]), error["message"]


@pytest.mark.parametrize("sent, language", SENT)
def test_a_serializer_refusal_answers_in_the_request_language(auth_api, sent, language):
    response = auth_api.post(
        "/api/v1/claims",
        # No quantity (DRF's own message) and a time without its offset (ours).
        {
            "behaviour": "metro",
            "idempotency_key": str(uuid.uuid4()),
            "occurred_at": "2026-11-28T08:30:00",
        },
        format="json",
        **_headers(sent),
    )

    error = _error(response, 400, "invalid", language)
    assert (
        error["message"]
        == {
            "zh-hans": "请求无效，详见 details。",
            "en": "The request is not valid; see details.",
        }[language]
    )
    assert (
        error["details"]
        == {
            "zh-hans": {
                "quantity": ["该字段是必填项。"],
                "occurred_at": ["请注明时区偏移，例如 2026-11-28T08:30:00+08:00。"],
            },
            "en": {
                "quantity": ["This field is required."],
                "occurred_at": ["Give a time zone offset, e.g. 2026-11-28T08:30:00+08:00."],
            },
        }[language]
    )


@pytest.mark.parametrize("sent, language", [*SENT, ("zh-TW", "zh-hans")])
def test_an_unknown_url_answers_in_the_request_language(db, sent, language):
    response = APIClient().get("/api/v1/no-such-thing", **_headers(sent))

    error = _error(response, 404, "not_found", language)
    assert error["message"] == {"zh-hans": "未找到。", "en": "Not found."}[language]


@pytest.mark.parametrize("sent, language", SENT)
def test_an_invalid_token_answers_in_the_request_language(db, sent, language):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = client.get("/api/v1/me", **_headers(sent))

    error = _error(response, 401, "authentication_failed", language)
    assert (
        error["message"]
        == {
            "zh-hans": "此令牌对任何类型的令牌无效",  # simplejwt's own catalogue
            "en": "Given token not valid for any token type",
        }[language]
    )
    assert error["details"] == {"reason": "token_not_valid"}


@pytest.mark.parametrize("sent, language", SENT)
def test_a_garbled_refresh_token_answers_in_the_request_language(db, sent, language):
    response = APIClient().post(
        "/api/v1/auth/token/refresh", {"refresh": "garbled"}, format="json", **_headers(sent)
    )

    error = _error(response, 401, "authentication_failed", language)
    # simplejwt's Chinese catalogue lacks this one: ours fills it in.
    assert error["message"] == {"zh-hans": "令牌无效", "en": "Token is invalid"}[language]


def test_a_throttled_login_answers_in_each_request_language(db):
    client = APIClient()
    for _ in range(10):  # THROTTLE_LOGIN: 10 a minute from one address
        client.post("/api/v1/auth/token", {"email": "x@example.org", "password": "wrong"})

    for sent, language in SENT:
        response = client.post(
            "/api/v1/auth/token",
            {"email": "x@example.org", "password": "wrong"},
            **_headers(sent),
        )

        error = _error(response, 429, "throttled", language)
        seconds = error["details"]["retry_after_seconds"]
        assert seconds > 0 and response["Retry-After"] == str(seconds)
        assert (
            error["message"]
            == {
                "zh-hans": f"请求已被限流。请在 {seconds} 秒后重试。",
                "en": f"Request was throttled. Retry in {seconds} second{'s' * (seconds != 1)}.",
            }[language]
        )


@pytest.mark.parametrize("sent, language", SENT)
def test_a_link_refusal_answers_in_the_request_language(auth_api, sent, language):
    """The linking protocol's refusals (services/linking.py) are translated too."""
    asked = auth_api.post(
        "/api/v1/me/transit-cards",
        {"card_number": "6227 0012 3456 7890", "consent": True},
        format="json",
    )
    assert asked.status_code == 202, asked.content

    response = auth_api.post(
        f"/api/v1/me/transit-cards/{asked.json()['id']}/confirm",
        {"code": "123456"},
        format="json",
        **_headers(sent),
    )

    error = _error(response, 409, "no_link_code", language)
    assert (
        error["message"]
        == {
            "zh-hans": "该绑定没有待使用的验证码（未曾申请或已过期）：请在合作方的应用或对账单"
            "中获取新的验证码。",
            "en": "No code is waiting for this link (none was asked for, or it expired): open "
            "the partner's app or statement to get a new one.",
        }[language]
    )


@pytest.mark.parametrize("sent, language", SENT)
def test_a_page_size_refusal_answers_in_the_request_language(auth_api, sent, language):
    response = auth_api.get("/api/v1/claims?page_size=0", **_headers(sent))

    error = _error(response, 400, "invalid", language)
    assert error["details"]["page_size"] == [
        {"zh-hans": "须为 1 到 200 之间的整数。", "en": "A whole number from 1 to 200."}[language]
    ]


def _asgi_post(app, *, headers: list[tuple[bytes, bytes]]) -> tuple[dict, bytes]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/claims",
        "headers": headers,
        "query_string": b"",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("1.2.3.4", 1),
        "root_path": "",
    }
    sent = []

    async def receive():
        await asyncio.sleep(3600)  # never read: refused on Content-Length

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("sent, language", SENT)
def test_the_body_limit_answers_in_the_request_language(sent, language):
    """The 413 is answered before Django (and its LocaleMiddleware) sees the request."""
    from config.body_limit import RequestBodyLimit

    async def never(scope, receive, send):  # pragma: no cover - must not be reached
        raise AssertionError("the body limit let an oversized request through")

    headers = [(b"content-type", b"application/json"), (b"content-length", b"5000")]
    if sent is not None:
        headers.append((b"accept-language", sent.encode()))

    answer_headers, body = _asgi_post(RequestBodyLimit(never, max_bytes=1000), headers=headers)

    error = json.loads(body)["error"]
    assert error["code"] == "request_too_large" and error["details"] == {"max_bytes": 1000}
    assert (
        error["message"]
        == {
            "zh-hans": "请求体最多 1000 字节。",
            "en": "The request body may be at most 1000 bytes.",
        }[language]
    )
    assert answer_headers[b"content-language"] == language.encode()
    assert answer_headers[b"vary"] == b"Accept-Language"


def test_receipts_are_records_in_the_source_language(auth_api, metro):
    """A receipt is written once, when the claim is decided, and read later in any language:
    its text stays English (its codes are what clients show translated)."""
    response = auth_api.post(
        "/api/v1/claims",
        {"behaviour": "metro", "quantity": 2, "idempotency_key": str(uuid.uuid4())},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )

    assert response.status_code == 201, response.content
    receipt = response.json()["receipt"]
    assert receipt["code"] == "credited"
    assert re.fullmatch(r"\d+ g credited\.", receipt["reason"]), receipt


# --- partner batches: each row's message -----------------------------------------------------


def _signed_post(path: str, issued, payload: dict, sent: str | None):
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time()))
    return APIClient().generic(
        "POST",
        path,
        body,
        content_type="application/json",
        HTTP_X_PARTNER_KEY=issued.key_id,
        HTTP_X_TIMESTAMP=timestamp,
        HTTP_X_SIGNATURE=sign(secret=issued.secret, timestamp=timestamp, body=body),
        **_headers(sent),
    )


@pytest.mark.parametrize("sent, language", SENT)
def test_partner_batch_rows_answer_in_the_request_language(db, sent, language):
    """Partners' systems are answered like everyone: Accept-Language, else Chinese."""
    operator = partner_create(name="Metro operator", kind=Partner.Kind.TRANSIT_OPERATOR)
    rows = [
        42,  # not an object
        {"record_id": "r1", "card_hash": "f" * 64, "mode": "metro", "direction": "in"},
        {
            "record_id": "r2",
            "card_hash": "nope",
            "mode": "metro",
            "direction": "in",
            "at": "2026-11-28T08:30:00+08:00",
            "station": "S1",
        },
    ]

    response = _signed_post("/api/v1/partners/transit/taps", operator, {"taps": rows}, sent)

    assert response.status_code == 200, response.content
    assert response["Content-Language"] == language
    answer = [(row["code"], row["message"]) for row in response.json()["rows"]]
    assert (
        answer
        == {
            "zh-hans": [
                ("malformed_row", "每条刷卡记录都必须是 JSON 对象。"),
                ("invalid_time", "at 须为带 UTC 偏移的 ISO-8601 日期时间。"),
                ("invalid_card_hash", "card_hash 须为卡号的 HMAC-SHA256 值（64 位十六进制）。"),
            ],
            "en": [
                ("malformed_row", "Each tap is a JSON object."),
                ("invalid_time", "at is an ISO-8601 date and time with a UTC offset."),
                (
                    "invalid_card_hash",
                    "card_hash is the 64-hex-digit HMAC-SHA256 of the card number.",
                ),
            ],
        }[language]
    )


@pytest.mark.parametrize("sent, language", SENT)
def test_an_oversized_batch_answers_in_the_request_language(db, sent, language):
    from carbon.adapters.partner_events.feed import MAX_BATCH

    platform = partner_create(name="QingJu", kind="platform")

    response = _signed_post(
        "/api/v1/partners/events", platform, {"events": [{}] * (MAX_BATCH + 1)}, sent
    )

    error = _error(response, 413, "batch_too_large", language)
    assert (
        error["message"]
        == {
            "zh-hans": f"每批最多 {MAX_BATCH} 条事件。",
            "en": f"A batch holds at most {MAX_BATCH} events.",
        }[language]
    )


def test_declared_row_messages_are_rendered_in_the_active_language():
    """Row models are declared at import; their messages are read when a row fails."""
    from carbon.adapters.partner_events.feed import BikeShareFields, RecyclingFields

    refusals = {}
    for language in ("zh-hans", "en"):
        with translation.override(language):
            for model, row in (
                (BikeShareFields, {"distance_km": 500, "duration_s": 600}),
                (RecyclingFields, {"weight_kg": 1, "material": "gold"}),
            ):
                with pytest.raises(RowError) as refused:
                    model.row_parse(row)
                refusals[language, model.__name__] = (refused.value.code, refused.value.message)

    assert refusals == {
        ("zh-hans", "BikeShareFields"): (
            "invalid_field",
            "`distance_km` 必须是不超过 100 的正数。",
        ),
        ("en", "BikeShareFields"): (
            "invalid_field",
            "`distance_km` must be a positive number, at most 100.",
        ),
        ("zh-hans", "RecyclingFields"): (
            "invalid_field",
            "`material` 必须是 ['e-waste', 'glass', 'metal', 'mixed-recyclables', 'paper', "
            "'plastic', 'textile'] 之一。",
        ),
        ("en", "RecyclingFields"): (
            "invalid_field",
            "`material` must be one of ['e-waste', 'glass', 'metal', 'mixed-recyclables', "
            "'paper', 'plastic', 'textile'].",
        ),
    }


# --- the API docs --------------------------------------------------------------------------


def _error_codes_description(response) -> tuple[list[str], str]:
    assert response.status_code == 200, response.content
    enum = json.loads(response.content)["components"]["schemas"]["ErrorCodeEnum"]
    return enum["enum"], enum["description"]


def test_the_docs_describe_the_error_codes_in_the_request_language(db):
    client = APIClient()

    codes_zh, chinese = _error_codes_description(client.get("/api/schema/?format=json"))
    codes_en, english = _error_codes_description(
        client.get("/api/schema/?format=json", HTTP_ACCEPT_LANGUAGE="en")
    )
    _, by_parameter = _error_codes_description(
        client.get("/api/schema/?format=json&lang=en", HTTP_ACCEPT_LANGUAGE="zh-CN")
    )
    _, again = _error_codes_description(client.get("/api/schema/?format=json"))

    assert codes_zh == codes_en == [code.value for code in ErrorCode]  # codes never change
    assert chinese.startswith("所有错误代码及其对应的唯一 HTTP 状态码：")
    assert "* `not_found` - 404: 未找到。" in chinese
    assert "* `idempotency_conflict` - 409: 该幂等键已用于另一个不同的请求。" in chinese
    assert english.startswith("Every error code and the one HTTP status it is answered with:")
    assert "* `not_found` - 404: Not found." in english
    assert by_parameter == english
    assert again == chinese  # the same language gives the same document
    for code in ErrorCode:
        assert f"* `{code.value}` - {code.status}: " in chinese, code


def test_the_docs_take_only_a_language_we_speak(db):
    """`?lang=` names the document's language; an unknown one is ignored, and a stream of
    made-up values leaves no catalogue behind."""
    from django.utils.translation import trans_real

    client = APIClient()
    english = client.get("/api/schema/?format=json&lang=en-GB")
    cached = len(trans_real._translations)
    odd = [client.get(f"/api/schema/?format=json&lang=xx-{n}") for n in range(3)]
    odd.append(client.get("/api/schema/?format=json&lang=../../etc/x", HTTP_ACCEPT_LANGUAGE="en"))

    assert english["Content-Language"] == "en"
    assert _error_codes_description(english)[1].startswith("Every error code")
    assert [r["Content-Language"] for r in odd] == ["zh-hans", "zh-hans", "zh-hans", "en"]
    assert _error_codes_description(odd[0])[1].startswith("所有错误代码")
    assert len(trans_real._translations) == cached


# --- the admin ---------------------------------------------------------------------------------


def test_the_admin_changelist_follows_the_request_language(client, resident, metro):
    from carbon.services.claims import claim_submit

    claim_submit(
        user=resident, behaviour_code="metro", quantity=5, idempotency_key=str(uuid.uuid4())
    )
    admin = User.objects.create_superuser(email="admin@example.org", password="admin-pass-123")
    client.force_login(admin)
    url = reverse("admin:carbon_claim_changelist")

    chinese = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en")

    assert chinese["Content-Language"] == "zh-hans"
    page = chinese.content.decode()
    # Django's own words, and ours: the filter, its choice, the actions.
    assert "搜索" in page and "审核队列" in page and "待审核" in page
    assert "批准所选（执行规则并发放积分）" in page
    assert "review queue" not in page
    page = english.content.decode()
    assert "Search" in page and "review queue" in page and "Needs review" in page
    assert "Approve selected (runs the rules and credits)" in page


def test_the_admin_reason_page_follows_the_request_language(client, resident, metro):
    from carbon.services.claims import claim_submit

    admin = User.objects.create_superuser(email="admin@example.org", password="admin-pass-123")
    client.force_login(admin)
    claim, _ = claim_submit(
        user=resident,
        behaviour_code="metro",
        quantity=5,
        idempotency_key=str(uuid.uuid4()),
        force_review="Missed-credit appeal: my card trip",
    )
    url = reverse("admin:carbon_claim_changelist")
    data = {"action": "approve", "_selected_action": [str(claim.pk)]}

    asks = client.post(url, data, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    done = client.post(
        url, {**data, "apply": "1", "note": "看过照片"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )

    assert "批准申报" in asks and "理由" in asks and "已选择 1 项：" in asks
    assert done.status_code == 302
    listing = client.get(done["Location"], HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "已批准 1 条申报。" in listing


# --- the catalogue -------------------------------------------------------------------------------

_GETTEXT = {"_", "gettext", "gettext_lazy", "gettext_noop"}
_PGETTEXT = {"pgettext", "pgettext_lazy"}
_NGETTEXT = {"ngettext", "ngettext_lazy"}


def _marked_messages() -> set[tuple[str | None, str]]:
    """Every (context, msgid) our code marks for translation, read from its syntax tree."""
    found = set()
    files = [
        p
        for package in ("carbon", "config", "rewards", "biodiversity", "zerowaste")
        for p in (ROOT / package).rglob("*.py")
        if "migrations" not in p.parts
    ]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            texts = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
            if name in _GETTEXT | _NGETTEXT and texts and isinstance(texts[0], str):
                found.add((None, texts[0]))
            elif (
                name in _PGETTEXT and len(texts) >= 2 and all(isinstance(t, str) for t in texts[:2])
            ):
                found.add((texts[0], texts[1]))
    for template in (ROOT / "carbon" / "templates").rglob("*.html"):
        for text in re.findall(r'{%\s*translate\s+"([^"]+)"', template.read_text()):
            found.add((None, text))
    return found


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%\((\w+)\)", text)) + ["{}"] * text.count("{}")


def test_every_message_the_code_marks_is_in_the_chinese_catalogue():
    catalogue = {(e.msgctxt, e.msgid) for e in polib.pofile(str(PO))}

    missing = _marked_messages() - catalogue

    assert not missing, f"add these to {PO.relative_to(ROOT)}: {sorted(missing, key=str)}"


def test_every_message_in_the_catalogue_is_translated_with_its_placeholders():
    po = polib.pofile(str(PO))

    assert po.metadata["Language"] == "zh_Hans"
    assert not po.obsolete_entries() and not po.fuzzy_entries()
    assert len(po) > 150
    for entry in po:
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        assert translations and all(t.strip() for t in translations), entry.msgid
        for translated in translations:
            assert _placeholders(translated) == _placeholders(entry.msgid), entry.msgid


def test_the_committed_mo_is_the_compiled_po():
    """The .mo is committed (no GNU gettext needed to serve it): it must be current."""

    def table(catalogue):
        return {
            (e.msgctxt, e.msgid): (e.msgstr, tuple(sorted(e.msgstr_plural.items())))
            for e in catalogue
            if e.msgid
        }

    assert table(polib.mofile(str(MO))) == table(polib.pofile(str(PO))), (
        "the .mo is stale: run `manage.py compilemessages` (or scripts/compile_messages.py)"
    )


def test_the_catalogue_is_the_one_django_reads():
    assert settings.LOCALE_PATHS == [ROOT / "locale"]
    assert dict(settings.LANGUAGES).keys() == {"zh-hans", "en"}
    assert settings.LANGUAGE_CODE == "zh-hans"  # residents' default
    with translation.override("zh-hans"):
        assert str(ErrorCode.NOT_FOUND.default_message) == "未找到。"
        assert translation.pgettext("batch rows", "taps") == "条刷卡记录"
    with translation.override("en"):
        assert str(ErrorCode.NOT_FOUND.default_message) == "Not found."
