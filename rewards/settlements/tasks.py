"""The periodic settlement of merchants (CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from rewards.settlements.services import settlements_last_month


@shared_task
def settle_last_month() -> int:
    return len(settlements_last_month().created)
