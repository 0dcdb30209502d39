"""Latency of the public map's bbox queries on PostGIS with many sightings: p50/p95 at city,
district and street zoom (points, as the API answers them: the real code path, ORM and
GeoJSON included), the grid-cluster query at city zoom, each with the spatial index and, as
the baseline, forced to a sequential scan; and the ratio.

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon \\
        .venv/bin/python bench/map_query.py --sightings 1000000
    ... bench/map_query.py --quick       # 100,000 sightings, 20 queries

Runs on its own database, `<DATABASE_URL's database>_bench_map`, created on the server
DATABASE_URL points at (dropped afterwards unless --keep; --reuse skips the load when it is
already there, and keeps it). The sightings are written by one INSERT ... SELECT over
generate_series (bulk SQL, no ORM): points spread over Wuhan, denser in the centre, a tenth
of them obscured.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("CARBON_LOCAL", "1")

from bench.harness import machine_facts, migrate, percentile, scratch_database  # noqa: E402

# Wuhan's urban area, and the box sizes a phone screen shows at each zoom (about 390x700 px).
CITY = (114.0, 30.3, 114.7, 30.8)
ZOOMS = {"city": (11, 0.55, 0.45), "district": (13, 0.14, 0.11), "street": (16, 0.017, 0.014)}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sightings", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=60, help="queries per zoom and mode")
    p.add_argument("--keep", action="store_true", help="keep the bench database")
    p.add_argument(
        "--reuse", action="store_true", help="reuse a kept database of that size (and keep it)"
    )
    p.add_argument("--quick", action="store_true", help="100,000 sightings, 20 queries")
    args = p.parse_args()
    if args.quick:
        args.sightings, args.queries = min(args.sightings, 100_000), min(args.queries, 20)
    return args


def load(n: int) -> float:
    """n sightings by one INSERT ... SELECT: a point near one of 40 centres (gaussian, so the
    density varies like a real city's), a tenth obscured (public point drawn in the cell)."""
    from django.db import connection

    from biodiversity.taxa.services import taxa_import

    taxa_import(
        text="scientific_name,rank,parent\nAnimalia,kingdom,\nAves,class,Animalia\n"
        "Ardea,genus,Aves\nArdea cinerea,species,Ardea\n"
    )
    rnd = random.Random(7)
    centres = [(rnd.uniform(114.1, 114.6), rnd.uniform(30.35, 30.75)) for _ in range(40)]
    values = ",".join(f"({i},{x},{y})" for i, (x, y) in enumerate(centres))
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM biodiversity_taxon WHERE scientific_name = 'Ardea cinerea'")
        taxon = cur.fetchone()[0]
        cur.execute(
            f"""
            WITH c(i, x, y) AS (VALUES {values}),
            raw AS (
              SELECT g,
                     c.x + 0.04 * sqrt(-2 * ln(random())) * cos(2 * pi() * random()) AS lon,
                     c.y + 0.03 * sqrt(-2 * ln(random())) * sin(2 * pi() * random()) AS lat,
                     random() < 0.1 AS obscured
              FROM generate_series(1, %s) g JOIN c ON c.i = g %% 40
            )
            INSERT INTO biodiversity_sighting (
              id, request_hash, taxon_guess_id, community_taxon_id, location, accuracy_m,
              place_name, public_location, public_accuracy_m, obscured, observer_obscured,
              observed_at, count, notes, quality_grade, hidden, new_district_record,
              candidate_new_species, created_at, updated_at)
            SELECT gen_random_uuid(), '', %s, %s,
                   ST_SetSRID(ST_MakePoint(lon, lat), 4326), 10, '',
                   CASE WHEN obscured THEN ST_SetSRID(ST_MakePoint(
                          floor(lon / 0.2) * 0.2 + random() * 0.2,
                          floor(lat / 0.2) * 0.2 + random() * 0.2), 4326)
                        ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END,
                   CASE WHEN obscured THEN 28000 ELSE 10 END, obscured, false,
                   now() - (g %% 365) * interval '1 day', 1, '',
                   CASE WHEN g %% 3 = 0 THEN 'needs_id' ELSE 'research' END,
                   false, false, false, now(), now()
            FROM raw
            """,
            [n, taxon, taxon],
        )
        cur.execute("ANALYZE biodiversity_sighting")
    return time.perf_counter() - started


def boxes(zoom_name: str, count: int, rnd: random.Random):
    _zoom, w, h = ZOOMS[zoom_name]
    west, south, east, north = CITY
    for _ in range(count):
        x = rnd.uniform(west + 0.1, east - 0.1 - w / 4)
        y = rnd.uniform(south + 0.1, north - 0.1 - h / 4)
        yield (x - w / 2, y - h / 2, x + w / 2, y + h / 2)


def timed(fn, bboxes, *, seq: bool) -> list[float]:
    from django.db import connection, transaction

    out = []
    for bbox in bboxes:
        with transaction.atomic():
            if seq:
                with connection.cursor() as cur:
                    cur.execute(
                        "SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;"
                        " SET LOCAL enable_indexonlyscan = off"
                    )
            started = time.perf_counter()
            fn(bbox)
            out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    args = parse_args()
    with scratch_database(suffix="bench_map", keep=args.keep, reuse=args.reuse) as scratch:
        import django

        django.setup()
        measure(args, scratch.fresh)


def measure(args, fresh: bool) -> None:
    from django.db import connection

    from biodiversity.maps.grid import map_grid_rebuild
    from biodiversity.maps.queries import POINTS_FROM_ZOOM, MapFilter, map_geojson
    from biodiversity.sightings.models import Sighting

    print(f"migrated in {migrate():.1f} s")
    if fresh:
        print(f"loaded {args.sightings:,} sightings in {load(args.sightings):.1f} s (bulk SQL)")
    total = Sighting.objects.count()
    print(f"{machine_facts()}; {total:,} sightings")
    rnd = random.Random(11)
    print(
        f"\n{'query (API answer)':<44}{'index p50':>11}{'p95':>9}{'seq p50':>11}{'p95':>9}{'ratio p95':>11}"
    )
    sizes: dict[str, list[int]] = {}
    started = time.perf_counter()
    cells = map_grid_rebuild()
    print(f"cluster grid rebuilt in {time.perf_counter() - started:.1f} s ({cells:,} cells)")
    # What the API answers at each zoom: unfiltered clusters from the grid below
    # POINTS_FROM_ZOOM, points from it; then clusters counted live (a filter is set),
    # and points forced at district zoom, for comparison.
    cases = [
        (
            f"{'points' if z >= POINTS_FROM_ZOOM else 'clusters (grid)'}, {name} z{z}",
            name,
            z,
            {},
        )
        for name, (z, _w, _h) in ZOOMS.items()
    ] + [
        ("clusters live (grade filter), city z11", "city", 11, {"grade": "research"}),
        ("clusters live (grade filter), district z13", "district", 13, {"grade": "research"}),
        ("points forced, district zoom", "district", 18, {}),
    ]
    for label, zoom_name, zoom, extra in cases:
        bbs = list(boxes(zoom_name, args.queries, rnd))

        def run(bbox, zoom=zoom, label=label, extra=extra):
            result = map_geojson(f=MapFilter(bbox=bbox, zoom=zoom, **extra))
            sizes.setdefault(label, []).append(len(result["features"]))

        timed(run, bbs[:3], seq=False)  # warm the cache
        indexed = timed(run, bbs, seq=False)
        seq = timed(run, bbs[: max(10, args.queries // 4)], seq=True)
        print(
            f"{label:<44}{percentile(indexed, 50):>9.1f}ms{percentile(indexed, 95):>7.1f}ms"
            f"{percentile(seq, 50):>9.1f}ms{percentile(seq, 95):>7.1f}ms"
            f"{percentile(seq, 95) / percentile(indexed, 95):>10.1f}x"
        )
    print("\nfeatures per answer (median):")
    for label, n in sizes.items():
        print(f"  {label}: {statistics.median(n):.0f}")
    with connection.cursor() as cur:
        cur.execute(
            "EXPLAIN SELECT id FROM biodiversity_sighting WHERE NOT hidden AND "
            "public_location @ ST_MakeEnvelope(114.30, 30.55, 114.32, 30.57, 4326)"
        )
        print("\nplan (street box):\n  " + "\n  ".join(r[0] for r in cur.fetchall()))


if __name__ == "__main__":
    main()
