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
        from rewards.offsets import demo as offsets_demo
        from rewards.offsets import personal_data as offsets_data
        from rewards.topups import personal_data as topups_data
        from rewards.topups import tasks as _topups_tasks  # noqa: F401  (Celery finds them)
        from rewards.topups.models import TopUp
        from rewards.topups.signals import topup_settled
        from rewards.vouchers import personal_data as vouchers_data
        from rewards.vouchers.services import topup_settled_receive

        for provider in (
            *vouchers_data.PROVIDERS,
            *merchants_data.PROVIDERS,
            *offers_data.PROVIDERS,
            *topups_data.PROVIDERS,
            *offsets_data.PROVIDERS,
        ):
            personal_data.register(provider)
        # A top-up's outcome becomes its voucher's (the top-up slice never imports vouchers).
        topup_settled.connect(
            topup_settled_receive, sender=TopUp, dispatch_uid="rewards.vouchers.topup_settled"
        )
        demo_data.register(demo_data.DemoSeeder(name="rewards", seed=demo.rewards_demo_seed))
        demo_data.register(
            demo_data.DemoSeeder(name="rewards.offsets", seed=offsets_demo.offsets_demo_seed)
        )
        self._money_ready()

    def _money_ready(self) -> None:
        """Money through Stripe: the payment purposes, the outbox's result handlers and the
        webhook routes of each slice, their personal data and demo data."""
        from carbon import demo_data, personal_data
        from rewards import money_demo
        from rewards.payments import personal_data as payments_data
        from rewards.payments import tasks as _payments_tasks  # noqa: F401
        from rewards.payments.outbox import stripe_request_handler_register
        from rewards.payments.services import payment_purpose_register, payments_handlers
        from rewards.payments.webhooks import webhook_route_register
        from rewards.pool import personal_data as pool_data
        from rewards.pool.services import POOL_PURPOSE
        from rewards.settlements import personal_data as settlements_data
        from rewards.settlements import tasks as _settlements_tasks  # noqa: F401
        from rewards.settlements.services import settlement_transfer_event, settlements_handlers
        from rewards.sponsorships import personal_data as sponsorships_data
        from rewards.sponsorships.services import SPONSORSHIP_PURPOSE

        payment_purpose_register(purpose=SPONSORSHIP_PURPOSE)
        payment_purpose_register(purpose=POOL_PURPOSE)
        for kind, handler in {**payments_handlers(), **settlements_handlers()}.items():
            stripe_request_handler_register(kind=kind, handler=handler)
        webhook_route_register(prefix="transfer.", handler=settlement_transfer_event)
        for provider in (
            *payments_data.PROVIDERS,
            *sponsorships_data.PROVIDERS,
            *pool_data.PROVIDERS,
            *settlements_data.PROVIDERS,
        ):
            personal_data.register(provider)
        demo_data.register(
            demo_data.DemoSeeder(name="rewards.money", seed=money_demo.money_demo_seed)
        )
