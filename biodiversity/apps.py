from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BiodiversityConfig(AppConfig):
    name = "biodiversity"
    verbose_name = _("Biodiversity")

    def ready(self) -> None:
        # Imported here: providers name models, which exist once the registry is ready.
        from biodiversity import demo
        from biodiversity.projects.boards import project_boards_register
        from biodiversity.sightings import personal_data as sightings_data
        from carbon import demo_data, personal_data

        for provider in sightings_data.PROVIDERS:
            personal_data.register(provider)
        demo_data.register(demo_data.DemoSeeder(name="biodiversity", seed=demo.seed))
        # Each survey project's live boards, in the core's leaderboard registry.
        project_boards_register()
