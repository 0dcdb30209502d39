"""The demo-data registry: feature apps add their demo rows to `manage.py seed_demo`.

The core cannot import a feature app, so each app registers a seeder from its
AppConfig.ready(); seed_demo runs the core's own demo data first (areas, catalogue,
partners, people), then every registered seeder in registration order (INSTALLED_APPS
order). A seeder must be idempotent, like seed_demo itself, and writes what it prints (for
example the demo logins it created) to the `stdout` it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DemoSeeder:
    name: str
    #: seed(stdout=...) -> None; `stdout` is the command's output wrapper.
    seed: Callable[..., Any]


_seeders: dict[str, DemoSeeder] = {}


def register(seeder: DemoSeeder) -> DemoSeeder:
    if seeder.name in _seeders:
        raise ValueError(f"demo seeder {seeder.name!r} is registered twice")
    _seeders[seeder.name] = seeder
    return seeder


def seeders() -> tuple[DemoSeeder, ...]:
    return tuple(_seeders.values())
