"""The top-up worker and its periodic sweep (scheduled in settings CELERY_BEAT_SCHEDULE);
each calls one service. RewardsConfig.ready() imports this module so every process knows
the tasks."""

from celery import shared_task

from rewards.topups.services import topup_send, topups_sweep


@shared_task
def send_topup(topup_id: int) -> str | None:
    topup = topup_send(topup_id=topup_id)
    return topup.status if topup is not None else None


@shared_task
def sweep_topups() -> int:
    return topups_sweep()
