"""The app's admin pages, registered by its slices."""

from biodiversity.institutions import admin as institutions_admin  # noqa: F401
from biodiversity.sightings import admin as sightings_admin  # noqa: F401
from biodiversity.taxa import admin as taxa_admin  # noqa: F401
