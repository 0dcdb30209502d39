"""Top-100 and around-me latency of the leaderboard engine with N residents on a board, on
the Redis backend and on the database backend (PostgreSQL).

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/rank_query.py --residents 1000000 --queries 300
    ... bench/rank_query.py --quick      # 100,000 residents, 100 queries

The database must be migrated. The script loads scores for a series of its own
(`bench.grams`: PostgreSQL by COPY, Redis by pipelined ZADD), reads it through the engine
(board_top, board_around: what the API and the socket call) with random members, prints
p50/p95/p99 in milliseconds, and removes its rows and keys at the end. Targets (issue 10):
p95 under 10 ms on Redis, under 50 ms on PostgreSQL. Baseline: the bare backend call
(ZREVRANGE / ORDER BY ... LIMIT) without the engine around it.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("CARBON_LOCAL", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench.harness import machine_facts, percentile  # noqa: E402
from carbon.leaderboards import engine, registry  # noqa: E402
from carbon.leaderboards.backends import reset_backends  # noqa: E402
from carbon.leaderboards.registry import BoardSource, Window  # noqa: E402

SERIES = "bench.grams"


def percentiles(samples: list[float]) -> str:
    p50, p95, p99 = (percentile(samples, p) for p in (50, 95, 99))
    return f"p50 {p50:.2f} ms  p95 {p95:.2f} ms  p99 {p99:.2f} ms"


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def load_postgres(scores: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM carbon_boardscore WHERE series = %s", [SERIES])
        with cursor.copy(
            "COPY carbon_boardscore (series, bucket, member, score) FROM STDIN"
        ) as copy:
            for i, score in enumerate(scores):
                copy.write_row((SERIES, "all", f"{i:012d}", score))
    # The rows were written around the backend: count their score bands (the rank aid).
    from carbon.leaderboards.backends.database import DatabaseBackend

    DatabaseBackend().bands_rebuild(series=SERIES)
    # As autovacuum would after a load: index-only scans need the visibility map.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE carbon_boardscore")
        cursor.execute("VACUUM ANALYZE carbon_boardband")


def load_redis(backend, scores: list[int]) -> None:
    key = f"lb:{SERIES}:all"
    backend.redis.delete(key)
    pipe = backend.redis.pipeline(transaction=False)
    for start in range(0, len(scores), 10_000):
        pipe.zadd(
            key, {f"{i:012d}": scores[i] for i in range(start, min(len(scores), start + 10_000))}
        )
        if start % 200_000 == 0:
            pipe.execute()
    pipe.execute()


def run(name: str, backend, n: int, queries: int, rng: random.Random) -> None:
    board = registry.board(f"{SERIES}.all")
    members = [f"{rng.randrange(n):012d}" for _ in range(queries)]
    it = iter(members * 2)
    top = timed(lambda: engine.board_top(board=board, limit=100), queries)
    around = timed(
        lambda: engine.board_around(board=board, member=next(it), before=5, after=5), queries
    )
    bare = timed(lambda: backend.top(series=SERIES, bucket="all", offset=0, limit=100), queries)
    print(f"{name:9} top-100    {percentiles(top)}")
    print(f"{name:9} around-me  {percentiles(around)}")
    print(f"{name:9} baseline   {percentiles(bare)}  (bare top-100 call)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="100,000 residents, 100 queries")
    args = parser.parse_args()
    if args.quick:
        args.residents, args.queries = min(args.residents, 100_000), min(args.queries, 100)
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        raise SystemExit("bench/rank_query.py needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    registry.register(
        BoardSource(
            key=SERIES,
            title="bench",
            counts="bench",
            unit="g",
            member_kind="resident",
            events=lambda: [],
            describe=lambda members: {},  # the rank query alone, no profile look-up
            windows=(Window.ALL,),
        )
    )
    rng = random.Random(1)
    # Grams earned are skewed: many small scores, a long tail of keen residents (ties too).
    scores = [int(rng.paretovariate(1.5) * 500) for _ in range(args.residents)]
    print(f"{machine_facts()}; {args.residents:,} residents, {args.queries} queries each")
    for name in ("redis", "database"):
        settings.LEADERBOARD_BACKEND = name
        reset_backends()
        from carbon.leaderboards.backends import get_backend

        backend = get_backend()
        started = time.perf_counter()
        if name == "redis":
            load_redis(backend, scores)
        else:
            load_postgres(scores)
        print(f"{name:9} loaded in {time.perf_counter() - started:.1f} s")
        try:
            run(name, backend, args.residents, args.queries, rng)
        finally:
            if name == "redis":
                backend.redis.delete(f"lb:{SERIES}:all")
            else:
                with connection.cursor() as cursor:
                    cursor.execute("DELETE FROM carbon_boardscore WHERE series = %s", [SERIES])
                    cursor.execute("DELETE FROM carbon_boardband WHERE series = %s", [SERIES])


if __name__ == "__main__":
    main()
