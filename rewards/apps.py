"""Offers, vouchers and their redemption by merchants (and, in their own slices, mortgage
offsets and transit top-ups)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Rewards")

    def ready(self) -> None:
        # The core calls back into rewards only through its registries.
        from carbon import demo_data, personal_data
        from rewards import demo
        from rewards.merchants import personal_data as merchants_data
        from rewards.offers import personal_data as offers_data
        from rewards.topups import personal_data as topups_data
        from rewards.topups import tasks as _topups_tasks  # noqa: F401  (Celery finds them)
        from rewards.vouchers import personal_data as vouchers_data

        for provider in (
            *vouchers_data.PROVIDERS,
            *merchants_data.PROVIDERS,
            *offers_data.PROVIDERS,
            *topups_data.PROVIDERS,
        ):
            personal_data.register(provider)
        demo_data.register(demo_data.DemoSeeder(name="rewards", seed=demo.rewards_demo_seed))
