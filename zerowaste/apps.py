"""Zero-waste cells (their certification lifecycle, achievements, evidence and objections),
award campaigns with votes and their anomaly review, and the public notice board."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ZerowasteConfig(AppConfig):
    name = "zerowaste"
    verbose_name = _("Zero waste")

    def ready(self) -> None:
        # The core calls back into zerowaste only through its registries.
        from carbon import demo_data, personal_data
        from zerowaste import demo
        from zerowaste import tasks as _tasks  # noqa: F401  (Celery finds them)
        from zerowaste.campaigns import personal_data as campaigns_data
        from zerowaste.campaigns.boards import campaign_boards_register
        from zerowaste.cells import personal_data as cells_data

        for provider in (*cells_data.PROVIDERS, *campaigns_data.PROVIDERS):
            personal_data.register(provider)
        demo_data.register(demo_data.DemoSeeder(name="zerowaste", seed=demo.zerowaste_demo_seed))
        # One live board per campaign, in the core's leaderboard registry.
        campaign_boards_register()
