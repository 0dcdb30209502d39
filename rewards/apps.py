from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"

    def ready(self) -> None:
        # Imported here, once models exist: each slice registers its personal data (and its
        # Celery tasks, so every process knows them).
        from carbon import personal_data
        from rewards.topups import personal_data as topups_data
        from rewards.topups import tasks as _topups_tasks  # noqa: F401

        for provider in topups_data.PROVIDERS:
            personal_data.register(provider)
