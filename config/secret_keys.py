"""Where a process's secrets come from, and the refusal to run on weak ones.

Each secret is read from the environment. On a local machine (the embedded default, the
test runner, DEBUG) a secret left unset is generated once and kept in `var/secrets.json`
(mode 0600, written atomically), so a newcomer needs no configuration and no secret is ever
written in the repository. Anywhere else a missing, placeholder or short secret stops the
process at settings import, before it serves anything: Daphne and Celery run no system
checks, so a check alone would not stop them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# Every secret the process needs, with how a fresh one is made.
GENERATORS: dict[str, Callable[[], str]] = {
    # Signs sessions, CSRF tokens and the API's access and refresh tokens.
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    # Fernet key(s) encrypting partner secrets at rest; comma-separated, the first encrypts.
    "PARTNER_SECRETS_KEY": _fernet_key,
    # Keys of the keyed hashes standing in for card numbers and partner account ids.
    "TRANSIT_CARD_HASH_KEY": lambda: secrets.token_urlsafe(32),
    "PARTNER_REF_HASH_KEY": lambda: secrets.token_urlsafe(32),
}

# Values that were written in this repository (old source defaults, .env.example) or are
# common placeholders: anyone can read them, so they protect nothing.
KNOWN_PLACEHOLDERS = frozenset(
    {
        "change-me",
        "changeme",
        "change_me",
        "secret",
        "embedded-insecure-key-change-me-in-production-0123456789",
        "embedded-transit-card-key",
        "embedded-partner-ref-key",
    }
)
# Django's own deploy check wants 50 characters for SECRET_KEY; 32 random characters are
# already more than 128 bits for the HMAC keys.
MIN_LENGTH = {"SECRET_KEY": 50}
DEFAULT_MIN_LENGTH = 32


def secret_problem(*, name: str, value: str) -> str | None:
    """Why `value` cannot serve as secret `name`, or None when it can."""
    if not value:
        return "is not set"
    parts = [p.strip() for p in value.split(",")] if name == "PARTNER_SECRETS_KEY" else [value]
    for part in parts:
        if part.lower() in KNOWN_PLACEHOLDERS or part.startswith("django-insecure-"):
            return "is a placeholder published in the source; set a random value"
        if name == "PARTNER_SECRETS_KEY":
            try:
                raw = base64.urlsafe_b64decode(part.encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                return "must be Fernet keys (32 url-safe base64 bytes each), comma-separated"
        elif len(part) < MIN_LENGTH.get(name, DEFAULT_MIN_LENGTH):
            return f"is shorter than {MIN_LENGTH.get(name, DEFAULT_MIN_LENGTH)} characters"
    return None


def secrets_resolve(
    *, environ: Mapping[str, str], local: bool, path: Path
) -> tuple[dict[str, str], list[str]]:
    """(value of every secret, names taken from the secrets file). Raises ImproperlyConfigured
    naming every unusable secret, so one start shows everything there is to fix."""
    values = {name: environ.get(name, "").strip() for name in GENERATORS}
    from_file = [name for name, value in values.items() if not value] if local else []
    if from_file:
        stored = secrets_file_read_or_create(path=path, names=from_file)
        values.update({name: stored[name] for name in from_file})
    problems = [
        f"{name} {why}"
        for name, value in values.items()
        if (why := secret_problem(name=name, value=value))
    ]
    # The card hash key is shared with the transit operator: it must not open anything else.
    seen: dict[str, str] = {}
    for name, value in values.items():
        if value and value in seen:
            problems.append(f"{name} is the same as {seen[value]}; each secret must be its own")
        seen.setdefault(value, name)
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start: "
            + "; ".join(problems)
            + ". A production process reads every secret from its environment (see "
            ".env.example for how to make each). On a developer machine, leave DATABASE_URL "
            "unset or set CARBON_LOCAL=1 to have missing secrets generated into "
            f"{path}."
        )
    return values, from_file


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """Serialises first runs that start together (web, worker and beat of `make run`)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read(path: Path) -> dict[str, str]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ImproperlyConfigured(
            f"{path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`."
        )
    try:
        stored = json.loads(path.read_text())
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{path} is not valid JSON ({exc}). Restore it, or delete it to start over "
            "(sessions end and stored partner secrets can no longer be decrypted)."
        ) from None
    if not isinstance(stored, dict):
        raise ImproperlyConfigured(f"{path} must hold a JSON object of secret names to values.")
    return {str(k): str(v) for k, v in stored.items()}


def _write_atomically(path: Path, values: Mapping[str, str]) -> None:
    # mkstemp creates the file 0600; a reader sees the old file or the whole new one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(dict(values), out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def secrets_file_read_or_create(*, path: Path, names: list[str]) -> dict[str, str]:
    """The stored secrets, after generating and storing any of `names` not yet there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _directory_lock(path.parent):
        stored = _read(path) if path.exists() else {}
        fresh = {name: GENERATORS[name]() for name in names if not stored.get(name)}
        if fresh:
            stored.update(fresh)
            _write_atomically(path, stored)
    return stored
