"""Secrets: none is written in the source. A local process generates its own into var/; a
production process with a missing or known secret refuses to start; `check --deploy` is
clean under production settings."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import subprocess
import threading
import time

import jwt
import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ImproperlyConfigured
from rest_framework_simplejwt.tokens import AccessToken

from carbon.models import PartnerCredential
from carbon.services.partners import partner_create, partner_request_verify, sign
from config.secret_keys import secret_problem, secrets_file_read_or_create, secrets_resolve
from tests.carbon.api_helpers import bearer
from tests.carbon.factories import UserFactory
from tests.carbon.production_process import PRODUCTION, PRODUCTION_SECRETS, REPO, run_django

# What the source used to default to: anyone could read these.
OLD_SECRET_KEY = "embedded-insecure-key-change-me-in-production-0123456789"
LOAD_SETTINGS = "import django; django.setup(); print('started')"


def test_production_without_secrets_refuses_to_start_naming_each(tmp_path):
    result = run_django(LOAD_SETTINGS, PRODUCTION, tmp_path)

    assert result.returncode != 0
    assert "started" not in result.stdout
    for name in PRODUCTION_SECRETS:
        assert f"{name} is not set" in result.stderr
    assert "Refusing to start" in result.stderr
    # It did not quietly fall back to a secrets file.
    assert not (tmp_path / "var" / "secrets.json").exists()


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("SECRET_KEY", OLD_SECRET_KEY, "placeholder"),
        ("SECRET_KEY", "change-me", "placeholder"),
        ("SECRET_KEY", "short-but-not-a-placeholder", "shorter than 50"),
        ("TRANSIT_CARD_HASH_KEY", "embedded-transit-card-key", "placeholder"),
        ("PARTNER_REF_HASH_KEY", "change-me", "placeholder"),
        ("PARTNER_SECRETS_KEY", "not-a-fernet-key", "Fernet"),
    ],
)
def test_production_with_a_known_or_weak_secret_refuses_to_start(tmp_path, name, value, why):
    result = run_django(LOAD_SETTINGS, {**PRODUCTION, **PRODUCTION_SECRETS, name: value}, tmp_path)

    assert result.returncode != 0
    assert name in result.stderr and why in result.stderr
    assert "started" not in result.stdout


def test_production_with_real_secrets_starts_and_writes_no_secrets_file(tmp_path):
    expected = PRODUCTION_SECRETS["SECRET_KEY"]
    show = f"; from django.conf import settings as s; print(s.SECRET_KEY == {expected!r})"

    result = run_django(LOAD_SETTINGS + show, {**PRODUCTION, **PRODUCTION_SECRETS}, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["started", "True"]
    assert not (tmp_path / "var" / "secrets.json").exists()


def test_the_embedded_default_generates_its_secrets_once_and_keeps_them_private(tmp_path):
    show = LOAD_SETTINGS + (
        "; import json; from django.conf import settings as s; print(json.dumps([s.SECRET_KEY,"
        " s.PARTNER_SECRETS_KEY, s.TRANSIT_CARD_HASH_KEY, s.PARTNER_REF_HASH_KEY]))"
    )

    first = run_django(show, {}, tmp_path)
    second = run_django(show, {}, tmp_path)

    assert first.returncode == 0, first.stderr
    values = json.loads(first.stdout.splitlines()[-1])
    assert json.loads(second.stdout.splitlines()[-1]) == values  # kept, not regenerated
    assert len(set(values)) == 4
    assert OLD_SECRET_KEY not in values and "change-me" not in values
    stored = tmp_path / "var" / "secrets.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert sorted(json.loads(stored.read_text()).values()) == sorted(values)
    # A secret from the environment wins over the file and is not copied into it.
    third = run_django(show, {"TRANSIT_CARD_HASH_KEY": "x" * 40}, tmp_path)
    assert json.loads(third.stdout.splitlines()[-1])[2] == "x" * 40
    assert "x" * 40 not in stored.read_text()


def test_var_is_ignored_by_git():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "var/secrets.json"], cwd=REPO, capture_output=True
    )
    assert ignored.returncode == 0


@pytest.mark.django_db
def test_an_access_token_signed_with_the_old_source_default_is_refused():
    """Before, anyone could sign a token for any user (the administrator included)."""
    admin = UserFactory(is_staff=True, is_superuser=True)
    genuine = AccessToken.for_user(admin)
    forged = jwt.encode(dict(genuine.payload), OLD_SECRET_KEY, algorithm="HS256")

    assert bearer(str(genuine)).get("/api/v1/me").status_code == 200
    assert bearer(forged).get("/api/v1/me").status_code == 401


@pytest.mark.django_db
def test_partner_secrets_at_rest_are_not_readable_with_a_key_derived_from_the_old_default():
    issued = partner_create(name="Metro operator", kind="transit_operator")
    stored = bytes(PartnerCredential.objects.get(key_id=issued.key_id).secret_encrypted)
    digest = hashlib.sha256(f"partner-secrets:{OLD_SECRET_KEY}".encode()).digest()

    with pytest.raises(InvalidToken):
        Fernet(base64.urlsafe_b64encode(digest)).decrypt(stored)


@pytest.mark.django_db
def test_a_partner_secrets_key_can_be_rotated_by_putting_the_new_one_first(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PARTNER_SECRETS_KEY = old
    issued = partner_create(name="Bank", kind="bank")
    settings.PARTNER_SECRETS_KEY = f"{new},{old}"
    ts = str(int(time.time()))

    partner = partner_request_verify(
        key_id=issued.key_id,
        timestamp=ts,
        signature=sign(secret=issued.secret, timestamp=ts, body=b"{}"),
        body=b"{}",
    )

    assert partner == issued.partner
    later = partner_create(name="Shop", kind="bank")
    encrypted = bytes(PartnerCredential.objects.get(key_id=later.key_id).secret_encrypted)
    assert Fernet(new).decrypt(encrypted).decode() == later.secret


def test_first_runs_that_start_together_agree_on_one_set_of_secrets(tmp_path):
    path = tmp_path / "var" / "secrets.json"
    seen: list[dict[str, str]] = []
    barrier = threading.Barrier(6)

    def start():
        barrier.wait()
        seen.append(
            secrets_file_read_or_create(path=path, names=["SECRET_KEY", "PARTNER_REF_HASH_KEY"])
        )

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(seen) == 6 and all(s == seen[0] for s in seen)
    assert json.loads(path.read_text()) == seen[0]
    assert [p.name for p in path.parent.iterdir()] == ["secrets.json"]  # no temp files left


def test_a_secrets_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "secrets.json"
    secrets_file_read_or_create(path=path, names=["SECRET_KEY"])
    path.chmod(0o644)

    with pytest.raises(ImproperlyConfigured, match="chmod 600"):
        secrets_file_read_or_create(path=path, names=["SECRET_KEY"])


def test_a_new_secret_is_added_to_an_existing_file_without_changing_the_others(tmp_path):
    path = tmp_path / "secrets.json"
    before = secrets_file_read_or_create(path=path, names=["SECRET_KEY"])

    after = secrets_file_read_or_create(path=path, names=["SECRET_KEY", "PARTNER_SECRETS_KEY"])

    assert after["SECRET_KEY"] == before["SECRET_KEY"]
    assert secret_problem(name="PARTNER_SECRETS_KEY", value=after["PARTNER_SECRETS_KEY"]) is None


def test_one_value_for_two_secrets_is_refused(tmp_path):
    shared = "s" * 64
    environ = {**PRODUCTION_SECRETS, "SECRET_KEY": shared, "TRANSIT_CARD_HASH_KEY": shared}

    with pytest.raises(ImproperlyConfigured, match="TRANSIT_CARD_HASH_KEY is the same as"):
        secrets_resolve(environ=environ, local=False, path=tmp_path / "secrets.json")


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = {
        **PRODUCTION,
        **PRODUCTION_SECRETS,
        "ALLOWED_HOSTS": "carbon.example.city",
        "CSRF_TRUSTED_ORIGINS": "https://carbon.example.city",
    }
    result = run_django(
        "import sys; from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
        env,
        tmp_path,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_warns_about_local_secrets_and_http(tmp_path):
    result = run_django(
        "from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy'])",
        {},
        tmp_path,
    )

    output = result.stdout + result.stderr
    assert "carbon.W001" in output
    assert "security.W004" in output  # no HSTS on a local process
