"""Periodic jobs of the offsets slice, each calling one service; the beat schedule in
settings names them (rewards.offsets.tasks.*)."""

from celery import shared_task

from rewards.offsets.services.batches import (
    offset_batches_prepare,
    offset_batches_send_due,
    offsets_expire,
)


@shared_task
def prepare_offset_batches() -> int:
    return offset_batches_prepare()


@shared_task
def send_offset_batches() -> int:
    return offset_batches_send_due()


@shared_task
def expire_offsets() -> int:
    return offsets_expire()
