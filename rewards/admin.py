"""The rewards app's admin pages live in its slices; importing them here registers them."""

from rewards.offsets import admin as _offsets_admin  # noqa: F401
