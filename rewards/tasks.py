"""Periodic jobs of rewards; each calls one service. The beat schedule in settings names them."""

from celery import shared_task

from rewards.vouchers.services import vouchers_expire


@shared_task
def expire_vouchers() -> int:
    return vouchers_expire()
