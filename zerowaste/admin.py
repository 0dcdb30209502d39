"""The zerowaste pages of the admin: each slice registers its own (imported here so that
Django's admin autodiscovery, which imports `zerowaste.admin`, finds them)."""

from zerowaste.campaigns import admin as _campaigns_admin  # noqa: F401
from zerowaste.cells import admin as _cells_admin  # noqa: F401
