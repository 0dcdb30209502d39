"""Periodic jobs of the carbon core and its adapters. Each calls one service. The task names
(carbon.tasks.*) are what the beat schedule in settings refers to."""

from celery import shared_task

from carbon.adapters.partner_events.feed import partner_events_expire
from carbon.adapters.photo.storage import photo_orphans_purge
from carbon.adapters.transit.trips import transit_taps_settle, transit_trips_expire
from carbon.leaderboards.engine import boards_roll
from carbon.services.claims import claims_release_held
from carbon.services.ledger import ledger_expire_lots, ledger_expire_pending
from carbon.services.partners import partner_nonces_purge


@shared_task
def expire_pending_transfers() -> int:
    return ledger_expire_pending()


@shared_task
def expire_lots() -> int:
    return ledger_expire_lots()


@shared_task
def purge_partner_nonces() -> int:
    return partner_nonces_purge()


@shared_task
def release_held_claims() -> int:
    return claims_release_held()


@shared_task
def expire_unmatched_partner_events() -> int:
    return partner_events_expire()


@shared_task
def purge_orphan_photo_files() -> int:
    return photo_orphans_purge()


@shared_task
def settle_transit_taps() -> int:
    return transit_taps_settle().created


@shared_task
def expire_transit_trips() -> int:
    return transit_trips_expire()


@shared_task
def roll_leaderboards() -> int:
    """Rolling windows move to today, old buckets go, boards get a fresh push."""
    return boards_roll()
