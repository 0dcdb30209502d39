"""The channel layer of a deployment with Redis: where pushes to sockets travel.

Redis pub/sub ignores database numbers (a PUBLISH on db 3 reaches a subscriber on db 5),
so two deployments, or two test runs, sharing one server on different databases heard each
other's pushes: a board's socket got the other's updates, their sequence numbers
interleaved with its own (a client saw seqs 1, 7, 2, 8). The layer's prefix names the
database, so each hears only its own; db 0 keeps the library's default prefix.
"""

from __future__ import annotations

from redis.connection import parse_url


def channel_layers(redis_url: str) -> dict:
    """CHANNEL_LAYERS for a deployment whose Redis is `redis_url`."""
    db = int(parse_url(redis_url).get("db") or 0)
    return {
        "default": {
            # The pub/sub layer: a group message is one PUBLISH that every ASGI worker
            # receives, suited to broadcasting a board to thousands of sockets across
            # workers.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": "asgi" if db == 0 else f"asgi.db{db}."},
        }
    }
