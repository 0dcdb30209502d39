"""A real headless Chromium for the pages a person looks at (the admin, the public map, the
notice board): the system's Chromium from the operating system's packages, driven by
Playwright (no browser is ever downloaded: `executable_path`), against pytest-django's live
server. Each test saves screenshots under var/screenshots/ for a person to look at.

Playwright's sync API keeps an event loop running in the test's thread, which Django's
async-safety check would take for async code touching the database: the browser tests set
DJANGO_ALLOW_ASYNC_UNSAFE, and only for their own duration (the test code and the live
server's thread are plain synchronous code; nothing else runs on that loop).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "var" / "screenshots"


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        pytest.fail("No Chromium: `make setup` installs the system package (apt: chromium)")
    return path


@pytest.fixture
def page(live_server, monkeypatch):
    """A fresh Chromium on a 1280x900 window, in Simplified Chinese, at the live server.

    Launched per test, after the database and the live server are up and torn down before
    them: the event loop Playwright runs exists only while the test itself runs.
    """
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            # Containers often lack the user namespaces Chromium's sandbox needs.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900},
            locale="zh-CN",
            extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
            base_url=live_server.url,
        )
        context.set_default_timeout(15_000)
        yield context.new_page()
        context.close()
        browser.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def admin_login(page, *, email: str, password: str) -> None:
    page.goto("/admin/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_load_state()
