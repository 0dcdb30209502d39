"""The rewards app's models live in its slices; importing them here registers them."""

from rewards.offsets import models as _offsets_models  # noqa: F401
