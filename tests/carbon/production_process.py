"""Runs code in a fresh Python process under production-like settings: what a deployment
sees at start-up, which the test runner's own (local) settings can't show."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_SECRETS = {
    "SECRET_KEY": "k" * 20 + "Zq8vN3xR0wLpT6yB1mJ4cH7sD9fG2aE5uK",
    "PARTNER_SECRETS_KEY": Fernet.generate_key().decode(),
    "TRANSIT_CARD_HASH_KEY": "t3Vq9LmX2pR8sW5yZ1bN4cF7hJ0kD6gA-transit",
    "PARTNER_REF_HASH_KEY": "p8Kd2Nf5Qs1Vx7Bz3Gh9Lm0Rt4Wy6Jc-partner",
}
# A PostgreSQL URL makes the process non-local; nothing here connects to it.
PRODUCTION = {"DATABASE_URL": "postgis://carbon:carbon@127.0.0.1:5432/never_connected"}
# Variables of this shell and of the test runner that would blur what is being tested.
SCRUBBED = {"CARBON_LOCAL", "DEBUG", "DATABASE_URL", "REDIS_URL", "VAR_DIR", "ALLOWED_HOSTS"}
SCRUBBED_PREFIXES = ("SECURE_", "CSP_", "SESSION_", "CSRF_")


def run_django(code: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """`code` in a fresh process whose environment holds `env` and a VAR_DIR in tmp_path."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in SCRUBBED and k not in PRODUCTION_SECRETS and not k.startswith(SCRUBBED_PREFIXES)
    }
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path / "var")})
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=180,
    )
