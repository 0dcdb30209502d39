"""Security headers: on by default in production (HSTS, nosniff, a Content-Security-Policy
for the pages and the API docs, Secure and HttpOnly cookies, a referrer policy), settable by
environment, and the docs still load everything they need under the policy."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from tests.carbon.production_process import PRODUCTION, PRODUCTION_SECRETS, run_django

# Fetches a few pages with Django's test client in a production-like process and prints
# what a browser would get.
FETCH = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client

def seen(response):
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "cookies": {
            name: {"secure": bool(m["secure"]), "httponly": bool(m["httponly"]),
                   "samesite": m["samesite"]}
            for name, m in response.cookies.items()
        },
        "body": response.content.decode(errors="replace")[:20000],
    }

https = Client(HTTP_HOST="carbon.example.city")
out = {
    "api": seen(https.get("/api/v1/me", secure=True)),
    "docs": seen(https.get("/api/docs/", secure=True)),
    "docs_script": seen(https.get("/api/docs/?script=", secure=True)),
    "redoc": seen(https.get("/api/redoc/", secure=True)),
    "admin_login": seen(https.get("/admin/login/", secure=True)),
    "plain_http": seen(https.get("/api/v1/me")),
    "session_cookie": [settings.SESSION_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY],
}
print("RESULT" + json.dumps(out))
"""


def fetch(tmp_path, **env) -> dict:
    result = run_django(
        FETCH,
        {**PRODUCTION, **PRODUCTION_SECRETS, "ALLOWED_HOSTS": "carbon.example.city", **env},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def directives(policy: str) -> dict[str, list[str]]:
    return {p.split()[0]: p.split()[1:] for p in policy.split(";") if p.strip()}


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict:
    return fetch(tmp_path_factory.mktemp("production"))


def test_production_sends_hsts_nosniff_referrer_policy_and_csp_on_the_api(production):
    api = production["api"]
    assert api["status"] == 401
    headers = api["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    csp = directives(headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no inline or eval'd script anywhere
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]


def test_production_redirects_plain_http_to_https(production):
    assert production["plain_http"]["status"] == 301
    assert production["plain_http"]["headers"]["Location"].startswith("https://")


@pytest.mark.parametrize("page", ["docs", "redoc"])
def test_the_docs_are_served_under_the_policy_with_no_inline_script(production, page):
    seen = production[page]
    assert seen["status"] == 200
    assert "Content-Security-Policy" in seen["headers"]
    assert seen["headers"]["X-Content-Type-Options"] == "nosniff"
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", seen["body"], re.S)
    assert scripts
    for attributes, body in scripts:
        # script-src 'self' runs only scripts loaded from our own origin.
        assert 'src="/static/' in attributes or 'src="/api/docs/?' in attributes, attributes
        assert not body.strip()


def test_swagger_uis_start_up_script_is_a_javascript_file(production):
    script = production["docs_script"]
    assert script["status"] == 200
    assert script["headers"]["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script["body"]


def test_cookies_are_secure_and_http_only_in_production(production):
    csrf = production["admin_login"]["cookies"]["csrftoken"]
    assert csrf == {"secure": True, "httponly": True, "samesite": "Lax"}
    assert production["session_cookie"] == [True, True]


def test_headers_are_settable_by_environment(tmp_path):
    seen = fetch(
        tmp_path,
        SECURE_HSTS_SECONDS="600",
        SECURE_HSTS_PRELOAD="0",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
        SECURE_REFERRER_POLICY="no-referrer",
        CSP_POLICY="default-src 'none'; frame-ancestors 'none'",
        CSP_REPORT_ONLY="1",
        CSP_REPORT_URI="/csp-reports",
        SECURE_SSL_REDIRECT="0",
        CSRF_COOKIE_SECURE="0",
    )

    headers = seen["api"]["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=600"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "Content-Security-Policy" not in headers
    assert directives(headers["Content-Security-Policy-Report-Only"]) == {
        "default-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "report-uri": ["/csp-reports"],
    }
    assert seen["plain_http"]["status"] == 401
    assert seen["admin_login"]["cookies"]["csrftoken"]["secure"] is False


@pytest.mark.django_db
def test_a_local_process_keeps_the_headers_that_need_no_https():
    """`make run` serves plain HTTP: no HSTS or redirect, but the rest of the policy."""
    response = Client().get("/api/v1/me")

    assert response.status_code == 401
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert Client().get("/api/redoc/").status_code == 200
