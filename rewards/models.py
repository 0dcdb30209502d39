"""The rewards app's models live in its slices; importing them here registers them with
Django under the `rewards` app label."""

from rewards.topups import models as _topups_models  # noqa: F401
