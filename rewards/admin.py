"""The rewards pages of the admin: each slice registers its own (imported here so that
Django's admin autodiscovery, which imports `rewards.admin`, finds them)."""

from rewards.merchants import admin as _merchants_admin  # noqa: F401
from rewards.offers import admin as _offers_admin  # noqa: F401
from rewards.offsets import admin as _offsets_admin  # noqa: F401
from rewards.payments import admin as _payments_admin  # noqa: F401
from rewards.pool import admin as _pool_admin  # noqa: F401
from rewards.settlements import admin as _settlements_admin  # noqa: F401
from rewards.sponsorships import admin as _sponsorships_admin  # noqa: F401
from rewards.topups import admin as _topups_admin  # noqa: F401
