"""The Stripe outbox worker and its periodic sweep (CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from rewards.payments.outbox import stripe_request_send, stripe_requests_sweep


@shared_task
def send_stripe_request(request_id: int) -> str | None:
    row = stripe_request_send(request_id=request_id)
    return row.status if row is not None else None


@shared_task
def sweep_stripe_requests() -> int:
    return stripe_requests_sweep()
