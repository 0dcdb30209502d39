"""The administrators' console. Each module registers one part of the core; each adapter
slice registers its own pages (carbon/adapters/*/admin.py), imported here so that Django's
admin autodiscovery (which imports `carbon.admin`) finds them. Every write goes through a
service; every decision needs its own permission."""

from carbon.adapters.partner_events import admin as _partner_events_admin  # noqa: F401
from carbon.adapters.photo import admin as _photo_admin  # noqa: F401
from carbon.adapters.transit import admin as _transit_admin  # noqa: F401
from carbon.admin import catalogue, claims, ledger, lockouts, partners, people  # noqa: F401
