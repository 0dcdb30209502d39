from django.apps import AppConfig


class CarbonConfig(AppConfig):
    name = "carbon"
    verbose_name = "Carbon core"
