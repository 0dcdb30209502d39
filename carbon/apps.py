from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CarbonConfig(AppConfig):
    name = "carbon"
    verbose_name = _("Carbon core")

    def ready(self) -> None:
        # Imported here, not at the top: providers name models, which exist only once the
        # app registry is ready. This module is the core's composition root: the one place
        # that knows both the core and its adapter slices.
        from carbon import checks, personal_data  # noqa: F401  (checks: registers them)
        from carbon.adapters.partner_events import personal_data as partner_events_data
        from carbon.adapters.photo import personal_data as photo_data
        from carbon.adapters.transit import personal_data as transit_data
        from carbon.leaderboards import ledger_source
        from carbon.services import personal_data as core_data

        for provider in (
            *core_data.PROVIDERS,
            *photo_data.PROVIDERS,
            *transit_data.PROVIDERS,
            *partner_events_data.PROVIDERS,
        ):
            personal_data.register(provider)

        # The core's own boards; feature apps register theirs from their own ready().
        ledger_source.register_sources()

        # The cached catalogue is replaced when a behaviour or a factor is saved or deleted.
        from carbon.services.catalogue import catalogue_watch

        catalogue_watch()
