"""The rewards admin as an administrator sees it, in a real headless Chromium: the rewards
models, the vouchers list (a voucher found by its code), the merchants' redemptions by
merchant and by day, and the offers with their stock, all in Chinese, with an offer's and a
voucher's own pages; an administrator whose browser asks for English reads them in English.
The rows are made by the services a resident and a till use."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from carbon.models import User
from rewards.merchants.redemptions import merchant_redeem
from rewards.vouchers.services import voucher_cancel, voucher_issue
from tests.browser import admin_login, screenshot
from tests.carbon.api_helpers import new_key
from tests.carbon.factories import UserFactory
from tests.carbon.test_admin_pages import english_page
from tests.rewards.factories import MerchantFactory, OfferFactory, StaffFactory, fund

pytestmark = pytest.mark.django_db(transaction=True)

LATIN = re.compile(r"[A-Za-z]")
EMAIL, PASSWORD = "admin@example.org", "admin-password-123"


def _texts(locator) -> list[str]:
    # text_content, not inner_text: the admin's CSS upper-cases English column headers.
    return [t.strip() for t in locator.all_text_contents()]


def _labels(page) -> list[str]:
    return [t.rstrip(":：") for t in _texts(page.locator("#content-main .form-row label"))]


def _filters(page) -> dict[str, list[str]]:
    """Each filter's title and its choices, as the sidebar shows them."""
    return {
        box.get_attribute("data-filter-title"): _texts(box.locator("li"))
        for box in page.locator("#changelist-filter details[data-filter-title]").all()
    }


VOUCHER_STATUSES_ZH = [
    ("issued", "已发放（可使用）"),
    ("processing", "兑付中（充值）"),
    ("redeemed", "已使用"),
    ("cancelled", "已取消"),
    ("expired", "已过期"),
    ("failed", "兑付失败"),
]


@pytest.fixture
def administrator():
    return User.objects.create_superuser(email=EMAIL, password=PASSWORD)


@pytest.fixture
def shop(db):
    """A grocer with a coffee voucher (two redeemed at its till, one kept, one cancelled) and a
    ticket offer nobody took, and a second shop whose one voucher was redeemed there."""
    grocer = MerchantFactory(name="绿色超市")
    coffee = OfferFactory(
        partner=grocer, title_zh="咖啡兑换券", title_en="Coffee voucher", stock_total=50
    )
    ticket = OfferFactory(
        partner=grocer,
        ticket=True,
        title_zh="东湖景区门票",
        title_en="East Lake ticket",
        price_g=300,
        stock_total=20,
        valid_until=timezone.now() + timedelta(days=90),
    )
    bakery = MerchantFactory(name="面包坊")
    bread = OfferFactory(partner=bakery, title_zh="面包券", title_en="Bread voucher")

    resident = UserFactory(email="resident@example.org")
    fund(resident, 1000)
    issued = [
        voucher_issue(user=resident, offer_id=offer.pk, idempotency_key=new_key())[0]
        for offer in (coffee, coffee, coffee, coffee, bread)
    ]
    for voucher, merchant in ((issued[0], grocer), (issued[1], grocer), (issued[4], bakery)):
        till = StaffFactory(merchant=merchant).user
        merchant_redeem(staff=till, merchant=merchant, code=voucher.code)
    voucher_cancel(user=resident, voucher_id=issued[3].pk)
    return {
        "grocer": grocer,
        "coffee": coffee,
        "ticket": ticket,
        "redeemed": issued[0],
        "also_redeemed": issued[1],
        "kept": issued[2],
    }


# `shop` before `page`: the rows exist before the browser's event loop runs in this thread.
def test_an_administrator_reads_the_rewards_admin_in_chinese(administrator, shop, page):
    admin_login(page, email=EMAIL, password=PASSWORD)

    # The index: the app and every rewards model by its Chinese name.
    assert page.locator(".app-rewards caption").inner_text().strip() == "积分兑换"
    models = _texts(page.locator(".app-rewards th[scope=row] a"))
    assert {"兑换商品", "兑换券", "商户核销记录", "商户员工", "交通卡充值"} <= set(models)
    assert {"银行项目", "贷款关联", "抵扣", "抵扣批次"} <= set(models)
    # Names in Latin letters are left only for the brand (Stripe).
    assert [m for m in models if LATIN.search(m.replace("Stripe", ""))] == []

    # The vouchers list: the one kept is found by its code, typed as the resident reads it.
    page.goto("/admin/rewards/voucher/")
    assert page.locator("#result_list tbody tr").count() == 5
    page.fill("#searchbar", shop["kept"].code.lower())
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    screenshot(page, "admin-rewards-vouchers-zh")
    assert page.locator("#result_list tbody tr").count() == 1
    assert _texts(page.locator("#result_list thead th"))[1:] == [
        "券码",
        "状态",
        "兑换商品",
        "合作方",
        "价格（克）",
        "发放时间",
        "过期时间",
        "完结时间",
        "已退还积分",
    ]
    row = page.locator("#result_list tbody tr")
    assert row.locator(".field-code").inner_text().strip() == shop["kept"].code
    assert row.locator(".field-status").inner_text().strip() == "已发放（可使用）"
    assert row.locator(".field-offer").inner_text().strip() == "咖啡兑换券（100 克）"
    filters = _filters(page)
    assert list(filters) == ["状态", "商品类型", "合作方"]
    assert filters["状态"] == ["全部", *[label for _, label in VOUCHER_STATUSES_ZH]]
    assert filters["商品类型"] == ["全部", "商户兑换券", "交通卡充值", "景区门票", "捐赠"]

    # Every voucher's status by its label.
    page.goto("/admin/rewards/voucher/")
    statuses = _texts(page.locator("#result_list td.field-status"))
    assert sorted(statuses) == sorted(["已使用", "已使用", "已使用", "已发放（可使用）", "已取消"])

    # A voucher's own page: every label in Chinese, its status and offer by name.
    page.goto(f"/admin/rewards/voucher/{shop['redeemed'].pk}/change/")
    screenshot(page, "admin-rewards-voucher-zh")
    labels = _labels(page)
    assert {"居民", "兑换商品", "状态", "券码", "积分冻结", "价格（克）", "完结时间"} <= set(labels)
    assert [label for label in labels if LATIN.search(label) and label != "ID"] == []
    assert page.locator(".field-status .readonly").inner_text().strip() == "已使用"
    assert "兑换券" in page.locator(".breadcrumbs").inner_text()

    # Redemptions by merchant, then by day.
    page.goto("/admin/rewards/merchantredemption/")
    assert page.locator("#result_list tbody tr").count() == 3
    assert _texts(page.locator("#result_list thead th"))[1:] == [
        "核销时间",
        "商户",
        "兑换券",
        "结算金额（元）",
        "核销人",
        "理由（代商户核销）",
        "结算时间",
    ]
    filters = _filters(page)
    assert filters["结算"] == ["全部", "未结算", "已结算"]
    assert set(filters["商户"]) >= {"全部", "绿色超市", "面包坊"}
    page.locator("#changelist-filter").get_by_role("link", name="绿色超市").click()
    page.wait_for_load_state()
    assert set(_texts(page.locator("#result_list td.field-merchant"))) == {"绿色超市"}
    # Down the dates to the day (the admin skips the levels with only one choice).
    for _ in range(3):
        if "__day=" in page.url:
            break
        page.locator("nav.toplinks a:not(.date-back)").first.click()
        page.wait_for_load_state()
    screenshot(page, "admin-rewards-redemptions-zh")
    today = timezone.localdate(shop["redeemed"].redemption.created_at)
    assert f"{today.month}月{today.day}日" in page.locator("nav.toplinks").inner_text()
    assert "__day=" in page.url and "merchant__id__exact=" in page.url
    assert page.locator("#result_list tbody tr").count() == 2
    assert set(_texts(page.locator("#result_list td.field-voucher"))) == {
        f"{shop['redeemed'].code} (已使用)",
        f"{shop['also_redeemed'].code} (已使用)",
    }
    assert _texts(page.locator("#result_list td.field-value_cny")) == ["5.00", "5.00"]

    # The offers with their stock.
    page.goto("/admin/rewards/offer/")
    screenshot(page, "admin-rewards-offers-zh")
    headers = _texts(page.locator("#result_list thead th"))[1:]
    assert headers == [
        "ID",
        "标题",
        "类型",
        "合作方",
        "价格（克）",
        "剩余库存",
        "总库存",
        "有效",
        "生效时间",
        "失效时间",
    ]
    rows = {
        r.locator(".field-offer_title").inner_text().strip(): (
            r.locator(".field-kind").inner_text().strip(),
            r.locator(".field-stock_left").inner_text().strip(),
            r.locator(".field-stock_total").inner_text().strip(),
        )
        for r in page.locator("#result_list tbody tr").all()
    }
    # Four coffee vouchers issued, one cancelled (its unit back on sale): 47 of 50 left.
    assert rows["咖啡兑换券"] == ("商户兑换券", "47", "50")
    assert rows["东湖景区门票"] == ("景区门票", "20", "20")
    assert "调整所选商品的库存（需填写理由）" in page.locator("select[name=action]").inner_text()

    # An offer's own page, in its sections.
    page.goto(f"/admin/rewards/offer/{shop['coffee'].pk}/change/")
    screenshot(page, "admin-rewards-offer-zh")
    labels = _labels(page)
    assert {"类型", "合作方", "标题（中文）", "标题（英文）", "价格（克）", "剩余库存"} <= set(
        labels
    )
    assert {"每日限额", "每月限额", "累计限额", "兑换券有效期", "过期退还积分"} <= set(labels)
    assert [label for label in labels if LATIN.search(label)] == []
    sections = _texts(page.locator("#content-main fieldset h2"))
    assert {"价格和库存", "每位居民的兑换限额", "有效期", "捐赠"} <= set(sections)
    assert page.locator(".field-stock_left .readonly").inner_text().strip() == "47"
    assert "按每位居民计；留空表示不限。" in page.locator("#content-main").inner_text()
    assert "咖啡兑换券（100 克）" in page.locator(".breadcrumbs").inner_text()


def test_an_english_administrator_reads_the_rewards_admin_in_english(
    administrator, shop, live_server, page
):
    english = english_page(page, live_server.url)
    try:
        admin_login(english, email=EMAIL, password=PASSWORD)
        models = _texts(english.locator(".app-rewards th[scope=row] a"))
        assert {"Offers", "Vouchers", "Merchant redemptions", "Bank programmes"} <= set(models)

        english.goto(f"/admin/rewards/voucher/?q={shop['kept'].code}")
        screenshot(english, "admin-rewards-vouchers-en")
        headers = _texts(english.locator("#result_list thead th"))[1:]
        assert headers[:3] == ["Voucher code", "Status", "Offer"]
        assert _texts(english.locator("#result_list td.field-status")) == ["Issued (usable)"]
        assert _texts(english.locator("#result_list td.field-offer")) == ["Coffee voucher (100 g)"]
        filters = _filters(english)
        assert list(filters) == ["status", "offer kind", "partner"]
        assert filters["status"][1:4] == ["Issued (usable)", "Being fulfilled (top-up)", "Redeemed"]
        assert filters["offer kind"][1:] == [
            "Merchant voucher",
            "Transit-card top-up",
            "Scenic-spot ticket",
            "Donation",
        ]

        english.goto("/admin/rewards/offer/")
        headers = _texts(english.locator("#result_list thead th"))[1:]
        assert headers[1:7] == [
            "Title",
            "Kind",
            "Partner",
            "Price (g)",
            "Stock left",
            "Total stock",
        ]
    finally:
        english.context.close()
