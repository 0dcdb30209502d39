"""Personal data: the provider record and the registry that export and erasure go through.

Every part of the system that stores a resident's data (the core's profile, consents and
claims; each adapter slice's cards, photos and links; each feature app's vouchers,
sightings or votes) registers one provider per export section from its AppConfig.ready().
`carbon.services.people.user_export` and `user_erase` call every registered provider, so the
core never imports the parts it exports or erases, and an app the core does not know is
covered as soon as it registers. tests/carbon/test_personal_data.py fails for any model that
refers to a user and is named by no provider.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model

# The export's own field; a section of that name would overwrite it.
RESERVED_KEYS = frozenset({"exported_at"})


@dataclass(frozen=True)
class PersonalData:
    """One export section and its eraser.

    `key` names the section of the export. `models` are the models whose rows hold a
    resident's data that this provider answers for (the coverage test checks every such model
    is named by some provider). `export(user=...)` returns JSON-ready data (dicts, lists,
    strings, numbers; times as ISO strings). `erase(user=...)` runs inside user_erase's
    transaction with the user row locked and not yet anonymised; it removes or anonymises
    what ties the rows to the person, and must keep whatever other parts rely on (the ledger
    keeps its entries). Erasers run in registration order: one that finds rows through
    another's data (trips through the resident's card hashes) registers before it.
    """

    key: str
    models: tuple[type[Model], ...]
    export: Callable[..., Any]
    erase: Callable[..., None]

    def __post_init__(self) -> None:
        if not self.key.isidentifier() or self.key in RESERVED_KEYS:
            raise ValueError(f"personal-data key {self.key!r} is not a usable section name")
        if not self.models:
            raise ValueError(f"personal-data provider {self.key!r} names no model")


class DuplicateProvider(ValueError):
    """Two providers for one export section: the second would hide the first."""


_providers: dict[str, PersonalData] = {}


def register(provider: PersonalData) -> PersonalData:
    """Add a provider; its key must be new. Call it from your AppConfig.ready()."""
    if not isinstance(provider, PersonalData):
        raise TypeError(f"{provider!r} is not a carbon.personal_data.PersonalData")
    if provider.key in _providers:
        raise DuplicateProvider(
            f"a personal-data provider for {provider.key!r} is already registered "
            f"({_providers[provider.key]!r})"
        )
    _providers[provider.key] = provider
    return provider


def unregister(key: str) -> None:
    """Remove a provider (tests that register one of their own put things back with this)."""
    del _providers[key]


def providers() -> tuple[PersonalData, ...]:
    """Every registered provider, in registration order."""
    return tuple(_providers.values())
