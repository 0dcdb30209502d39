"""Periodic jobs of the carbon core. Each calls one service."""

from celery import shared_task

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
    from carbon.services.claims import claims_release_held

    return claims_release_held()


@shared_task
def expire_unmatched_partner_events() -> int:
    from carbon.services.partner_events import partner_events_expire

    return partner_events_expire()


@shared_task
def purge_orphan_photo_files() -> int:
    from carbon.services.photos import photo_orphans_purge

    return photo_orphans_purge()


@shared_task
def settle_transit_taps() -> int:
    from carbon.services.transit import transit_taps_settle

    return transit_taps_settle().created


@shared_task
def expire_transit_trips() -> int:
    from carbon.services.transit import transit_trips_expire

    return transit_trips_expire()
