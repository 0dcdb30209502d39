"""Pushes to residents' WebSockets. Called after commit; a push failure never fails a write."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def balance_group(user_id: int) -> str:
    return f"balance.{user_id}"


def balance_changed(*, user_ids: Iterable[int]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for user_id in user_ids:
        try:
            async_to_sync(layer.group_send)(balance_group(user_id), {"type": "balance.changed"})
        except Exception:  # the ledger is the truth; a client re-reads on reconnect
            log.warning("balance push failed for user %s", user_id, exc_info=True)
