from django.apps import AppConfig


class CarbonConfig(AppConfig):
    name = "carbon"
    verbose_name = "Carbon core"

    def ready(self):
        from carbon import checks  # noqa: F401  registers the deploy checks
