"""The administrators' console. Each module registers one part of the core; each adapter
slice registers its own pages (carbon/adapters/*/admin.py), imported here so that Django's
admin autodiscovery (which imports `carbon.admin`) finds them. Every write goes through a
service; every decision needs its own permission."""

from django.contrib import admin as _admin
from django.utils.translation import gettext_lazy as _

from carbon.adapters.partner_events import admin as _partner_events_admin  # noqa: F401
from carbon.adapters.photo import admin as _photo_admin  # noqa: F401
from carbon.adapters.transit import admin as _transit_admin  # noqa: F401
from carbon.admin import catalogue, claims, ledger, lockouts, partners, people  # noqa: F401

# The console's own name, in the administrator's language (Django's default says "Django").
_admin.site.site_header = _("Carbon City administration")
_admin.site.site_title = _("Carbon City administration")
_admin.site.index_title = _("Site administration")
