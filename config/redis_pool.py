"""One Redis connection pool per process for Django's cache.

Django keeps a cache object per thread and, under ASGI, per request context; each of those
makes its own connection pool. Served by the ASGI server, every request therefore opened a
new connection to Redis for its first cache call (the catalogue's version check of GET
/behaviours, every throttle's count): a TCP connect and the client's handshake, four round
trips before the one that was wanted, and a socket left to the garbage collector. With
this pool class (CACHES OPTIONS `pool_class`) every cache object of the process draws on
one thread-safe pool per server and options, as redis-py intends; a forked child resets
it (redis-py checks the process id).

Django's Redis cache client also builds a new `redis.Redis` object for every cache call
(`get_client`), and building one copies redis-py's table of about 170 response callbacks:
0.1 ms of CPU per call, three times in a claim (the throttle's read and write, the
catalogue's version). `ProcessRedisCache` keeps one client per pool instead; a client holds
no connection of its own (it borrows one from the pool per command), so sharing it across
threads is what redis-py documents as safe.
"""

from __future__ import annotations

import threading

import redis
from django.core.cache.backends.redis import RedisCache, RedisCacheClient


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


class ProcessRedisCacheClient(RedisCacheClient):
    """Django's client, with one `redis.Redis` per pool for the whole process rather than
    one per call. Django makes a cache object (and so a client of this class) per thread
    and per request context: the clients are kept beside the pools, which are per process
    too (ProcessConnectionPool)."""

    _clients: dict[int, redis.Redis] = {}
    _lock = threading.Lock()

    def get_client(self, key=None, *, write=False) -> redis.Redis:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None or client.connection_pool is not pool:
            with self._lock:
                client = self._clients.get(id(pool))
                if client is None or client.connection_pool is not pool:
                    client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ProcessRedisCache(RedisCache):
    """CACHES BACKEND: Django's RedisCache through `ProcessRedisCacheClient`."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = ProcessRedisCacheClient  # Django sets its own class in __init__
