from django.apps import AppConfig


class ZerowasteConfig(AppConfig):
    name = "zerowaste"
