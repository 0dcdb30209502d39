"""One Redis connection pool per process for Django's cache.

Django keeps a cache object per thread and, under ASGI, per request context; each of those
makes its own connection pool. Served by the ASGI server, every request therefore opened a
new connection to Redis for its first cache call (the catalogue's version check of GET
/behaviours, every throttle's count): a TCP connect and the client's handshake, four round
trips before the one that was wanted, and a socket left to the garbage collector. With
this pool class (CACHES OPTIONS `pool_class`) every cache object of the process draws on
one thread-safe pool per server and options, as redis-py intends; a forked child resets
it (redis-py checks the process id).
"""

from __future__ import annotations

import threading

import redis


class ProcessConnectionPool(redis.ConnectionPool):
    _pools: dict[tuple[str, str], redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs) -> redis.ConnectionPool:
        # The options are Django's OPTIONS (strings, numbers, classes): their repr is stable.
        key = (url, repr(sorted(kwargs.items())))
        with cls._lock:
            pool = cls._pools.get(key)
            if pool is None:
                pool = cls._pools[key] = super().from_url(url, **kwargs)
            return pool
