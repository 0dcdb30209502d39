"""The rewards app's admin pages live in its slices; importing them here lets Django's admin
autodiscovery (which imports `rewards.admin`) find them."""

from rewards.topups import admin as _topups_admin  # noqa: F401
