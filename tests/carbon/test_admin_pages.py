"""The admin as a person sees it, in a real headless Chromium: a reviewer logs in and finds
the claim queue in Chinese, with the styles and scripts the CSP allows actually applied; our
own models, columns, filters and statuses are named in Chinese too, and an administrator
whose browser asks for English reads the same pages in English."""

from __future__ import annotations

import re

import pytest

from carbon.models import User
from carbon.services.claims import claim_submit
from tests.browser import admin_login, screenshot
from tests.carbon.api_helpers import new_key

pytestmark = pytest.mark.django_db(transaction=True)

LATIN = re.compile(r"[A-Za-z]")


@pytest.fixture
def administrator():
    return User.objects.create_superuser(email="admin@example.org", password="admin-password-123")


@pytest.fixture
def claims(resident, metro):
    """One claim credited, one waiting for a reviewer."""
    credited, _ = claim_submit(
        user=resident, behaviour_code="metro", quantity="12.4", idempotency_key=new_key()
    )
    queued, _ = claim_submit(
        user=resident,
        behaviour_code="metro",
        quantity="3",
        idempotency_key=new_key(),
        force_review="Missed-credit appeal: my card trip",
    )
    return credited, queued


def english_page(page, base_url: str):
    """A second browser context whose owner reads English (its own cookies, so its own
    login), on the same Chromium as `page`."""
    context = page.context.browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale="en-US",
        extra_http_headers={"Accept-Language": "en-US,en;q=0.9"},
        base_url=base_url,
    )
    context.set_default_timeout(15_000)
    return context.new_page()


def _texts(locator) -> list[str]:
    # text_content, not inner_text: the admin's CSS upper-cases English column headers.
    return [t.strip() for t in locator.all_text_contents()]


def test_the_admin_greets_an_administrator_in_chinese(page, administrator, resident, metro):
    claim_submit(user=resident, behaviour_code="metro", quantity="12.4", idempotency_key=new_key())
    admin_login(page, email="admin@example.org", password="admin-password-123")
    assert page.url.endswith("/admin/")
    screenshot(page, "admin-index-zh")
    page.goto("/admin/carbon/claim/")
    shot = screenshot(page, "admin-claims-zh")
    assert shot.stat().st_size > 10_000
    # The stylesheet loaded (a page without CSS has no coloured header).
    header = page.locator("#header")
    assert header.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert "碳积分城市管理后台" in page.title()
    assert page.locator("#site-name").inner_text() == "碳积分城市管理后台"
    # The resident's claim is in the list, and the list's chrome is in Chinese.
    assert page.locator("#result_list tbody tr").count() == 1
    assert page.get_by_text("选择").first.is_visible() or page.get_by_text("个").first.is_visible()


# `claims` before `page`: the rows exist before the browser's event loop runs in this thread.
def test_the_admin_names_our_models_columns_and_statuses_in_chinese(administrator, claims, page):
    credited, queued = claims
    admin_login(page, email="admin@example.org", password="admin-password-123")

    models = _texts(page.locator(".app-carbon th[scope=row] a"))
    assert page.locator(".app-carbon caption").inner_text().strip() == "碳积分核心"
    assert {"申报", "申诉", "转账", "积分批次", "账户", "合作方", "排放因子", "行为"} <= set(models)
    assert {"交通卡", "刷卡记录", "行程", "站点", "申报照片", "合作方事件", "冷却期"} <= set(models)
    assert [m for m in models if LATIN.search(m)] == []  # "Claims", "Users", ... are gone
    # Our libraries' pages too, from our catalogue (their own lack these).
    assert "登录尝试" in _texts(page.locator(".app-axes th[scope=row] a"))
    assert "已拉黑的令牌" in _texts(page.locator(".app-token_blacklist th[scope=row] a"))

    page.goto("/admin/carbon/claim/")
    screenshot(page, "admin-claims-zh")
    headers = _texts(page.locator("#result_list thead th"))[1:]  # after the checkbox column
    assert headers == [
        "提交时间",
        "居民",
        "行为",
        "数量",
        "凭证类型",
        "状态",
        "已发放积分（克）",
    ]
    statuses = _texts(page.locator("#result_list td.field-status"))
    assert sorted(statuses) == sorted(["已发放积分", "待审核"])
    assert set(_texts(page.locator("#result_list td.field-evidence_kind"))) == {"自主申报"}
    filters = page.locator("#changelist-filter").inner_text()
    assert "审核队列" in filters and "状态" in filters and "凭证类型" in filters
    assert "暂缓（冷却期）" in filters and "已接收" in filters
    assert "Credited" not in filters and "Needs review" not in filters
    assert "申报" in page.locator(".breadcrumbs").inner_text()

    # A claim's own page: every label, and the status, in Chinese.
    page.goto(f"/admin/carbon/claim/{queued.pk}/change/")
    screenshot(page, "admin-claim-zh")
    labels = [t.rstrip(":：") for t in _texts(page.locator("#content-main .form-row label"))]
    assert {"居民", "行为", "提交时间", "状态", "审核意见", "回执", "凭证类型"} <= set(labels)
    assert [label for label in labels if LATIN.search(label) and label != "ID"] == []
    assert labels.count("回执") == 1  # step by step, not the raw JSON as well
    assert page.locator(".field-status .readonly").inner_text().strip() == "待审核"
    assert page.locator(".field-evidence_kind .readonly").inner_text().strip() == "自主申报"


def test_an_english_administrator_reads_the_same_pages_in_english(
    administrator, claims, live_server, page
):
    english = english_page(page, live_server.url)
    try:
        admin_login(english, email="admin@example.org", password="admin-password-123")

        models = _texts(english.locator(".app-carbon th[scope=row] a"))
        assert english.locator(".app-carbon caption").text_content().strip() == "Carbon core"
        assert {"Claims", "Transfers", "Lots", "Partners", "Emission factors"} <= set(models)

        english.goto("/admin/carbon/claim/")
        screenshot(english, "admin-claims-en")
        headers = _texts(english.locator("#result_list thead th"))[1:]
        assert headers[:2] == ["Submitted at", "Resident"] and headers[4:6] == [
            "Evidence type",
            "Status",
        ]
        statuses = _texts(english.locator("#result_list td.field-status"))
        assert sorted(statuses) == ["Credited", "Needs review"]
        assert set(_texts(english.locator("#result_list td.field-evidence_kind"))) == {
            "Self declaration"
        }
        filters = english.locator("#changelist-filter").inner_text()
        assert "Held (penalty box)" in filters and "已发放积分" not in filters
    finally:
        english.context.close()


def test_a_wrong_password_is_refused_in_chinese(page, administrator):
    admin_login(page, email="admin@example.org", password="wrong")
    assert "/admin/login/" in page.url
    assert page.locator(".errornote").is_visible()
    screenshot(page, "admin-login-refused-zh")
