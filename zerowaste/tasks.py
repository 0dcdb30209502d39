"""Periodic jobs of zerowaste; each calls one service. The beat schedule in settings names
them."""

from celery import shared_task

from zerowaste.campaigns.anomalies import campaigns_review
from zerowaste.campaigns.results import campaigns_publish_closed
from zerowaste.cells.lifecycle import cells_expire, cells_remind


@shared_task
def expire_cells() -> int:
    return cells_expire()


@shared_task
def remind_renewals() -> int:
    return cells_remind()


@shared_task
def review_votes() -> int:
    return campaigns_review()


@shared_task
def publish_results() -> int:
    return campaigns_publish_closed()
