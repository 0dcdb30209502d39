from django.apps import AppConfig


class BiodiversityConfig(AppConfig):
    name = "biodiversity"
