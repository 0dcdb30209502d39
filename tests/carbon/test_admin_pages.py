"""The admin as a person sees it, in a real headless Chromium: a reviewer logs in and finds
the claim queue in Chinese, with the styles and scripts the CSP allows actually applied."""

from __future__ import annotations

import pytest

from carbon.models import User
from carbon.services.claims import claim_submit
from tests.browser import admin_login, screenshot
from tests.carbon.api_helpers import new_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def administrator():
    return User.objects.create_superuser(email="admin@example.org", password="admin-password-123")


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


def test_a_wrong_password_is_refused_in_chinese(page, administrator):
    admin_login(page, email="admin@example.org", password="wrong")
    assert "/admin/login/" in page.url
    assert page.locator(".errornote").is_visible()
    screenshot(page, "admin-login-refused-zh")
