from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"

    def ready(self) -> None:
        # Each slice registers its personal data and demo data with the core's registries.
        from carbon import demo_data, personal_data
        from rewards.offsets import demo as offsets_demo
        from rewards.offsets import personal_data as offsets_data

        for provider in offsets_data.PROVIDERS:
            personal_data.register(provider)
        demo_data.register(
            demo_data.DemoSeeder(name="rewards.offsets", seed=offsets_demo.offsets_demo_seed)
        )
