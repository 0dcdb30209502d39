"""Fixtures every app's tests share: residents and API clients, an admin, the ledger check,
fresh process caches. Each app's own fixtures are in tests/<app>/conftest.py, its factories
in tests/<app>/factories.py.

Tests marked `postgres` need row locks and real concurrency: they skip on SQLite, except
when CARBON_REQUIRE_SERVICES=1 (CI's PostGIS pass), where they fail."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from carbon.models import User
from carbon.services.ledger import system_account_cache_clear
from tests.carbon.api_helpers import client_for
from tests.carbon.factories import UserFactory

# The `page` fixture: a real headless Chromium at the live server (tests/browser.py).
pytest_plugins = ["tests.browser"]

REQUIRE_SERVICES = os.environ.get("CARBON_REQUIRE_SERVICES") == "1"


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith(("postgis", "postgresql"))
    has_redis = bool(settings.REDIS_URL)
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            if REQUIRE_SERVICES:
                item.add_marker(pytest.mark.usefixtures("_fail_missing_postgres"))
            else:
                item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))
        if "redis" in item.keywords and not has_redis:
            if REQUIRE_SERVICES:
                item.add_marker(pytest.mark.usefixtures("_fail_missing_redis"))
            else:
                item.add_marker(pytest.mark.skip(reason="needs Redis (set REDIS_URL)"))


@pytest.fixture
def _fail_missing_postgres():
    pytest.fail("CARBON_REQUIRE_SERVICES=1 but DATABASE_URL does not point at PostgreSQL")


@pytest.fixture
def _fail_missing_redis():
    pytest.fail("CARBON_REQUIRE_SERVICES=1 but REDIS_URL is not set")


@pytest.fixture(autouse=True)
def _fresh_process_caches(settings, tmp_path):
    """Ids of system accounts are cached per process; each test's database starts empty."""
    from django.core.cache import cache

    from carbon.verifiers import reset_registry

    system_account_cache_clear()
    reset_registry()
    cache.clear()
    _fresh_leaderboards()
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # The random review sample of self declarations is drawn only in the tests about it
    # (they set 0 or 10000 basis points: never or always); elsewhere it would be noise.
    settings.CARBON_SELF_REVIEW_SAMPLE_BP = 0
    # PBKDF2 costs ~0.5 s a user; the test that checks hashing itself sets its own hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield
    system_account_cache_clear()
    reset_registry()
    _fresh_leaderboards()


def _fresh_leaderboards():
    """The leaderboard backend outlives a test's database on Redis: empty it (its own keys
    only) and forget what the process remembers of it."""
    from carbon.leaderboards.backends import get_backend, reset_backends
    from carbon.leaderboards.engine import forget_process_state

    reset_backends()
    forget_process_state()
    backend = get_backend()
    if hasattr(backend, "flush_all"):
        backend.flush_all()


@pytest.fixture(autouse=True)
def _english_unless_marked(request, settings):
    """The suite asserts the source (English) messages, so here a request without
    Accept-Language, and code run outside a request, get English. Tests marked
    `configured_language` see the project's own default, Simplified Chinese
    (tests/carbon/test_localisation.py checks both)."""
    if request.node.get_closest_marker("configured_language") is None:
        settings.LANGUAGE_CODE = "en"


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def resident(db):
    return UserFactory()


@pytest.fixture
def other_resident(db):
    return UserFactory()


@pytest.fixture
def auth_api(resident):
    return client_for(resident)


@pytest.fixture
def admin_client(db):
    """A superuser logged in to the Django admin."""
    admin = User.objects.create_superuser(email="admin@example.org", password="admin-password-123")
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def ledger_is_consistent(db):
    """Use after a flow: runs `manage.py ledger_check`, which exits non-zero on a violation."""

    def check():
        call_command("ledger_check")

    return check


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


# --- the local Stripe server (tests/stripe_server.py) ----------------------------------
# Here rather than in tests/rewards/payments/ because the admin's permission test makes its
# payments rows through it too; started once, on the first test that asks for it.


@pytest.fixture(scope="session")
def stripe_session_server():
    from tests.stripe_server import local_stripe

    with local_stripe() as server:
        yield server


@pytest.fixture
def stripe_server(stripe_session_server, settings):
    """The local Stripe server, emptied, with the gateway's settings pointing at it."""
    from tests.stripe_server import SECRET_KEY, WEBHOOK_SECRET

    stripe_session_server.reset()
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_API_BASE = stripe_session_server.url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_LEASE_SECONDS = 1
    stripe_session_server.slow_seconds = 1.5
    return stripe_session_server
