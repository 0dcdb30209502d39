#!/usr/bin/env python
"""Bench: transit taps pushed through the API into trips and credits, on PostgreSQL.

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon \
        .venv/bin/python bench/transit_ingest.py [--taps N --cards N --batch N --workers N]

Creates its own database (DATABASE_URL's name + _bench_transit, dropped at the end unless
--keep-db),
migrates it, loads the demo network, creates --cards residents with a linked card and the
transit consent, then pushes --taps taps (entry/exit pairs, about five trips a card over the
last five days, in time order as an operator would send them) in signed batches through the
whole HTTP stack in-process (Django's test client: URL routing, DRF, signature check, the
ingestion service, pairing, claim rules, the ledger), from --workers processes at once (each
takes every n-th batch). It prints taps per second end to end, checks that every tap is in
a trip and every trip credited, and runs ledger_check.

The usual trips of a batch are credited set-based (claims_bulk, ledger_bulk: a fixed number
of statements per batch); CARBON_FEED_BULK_CREDIT=False credits every trip one at a time
(~21 statements a trip: claim_submit, the rules, the ledger), the path to compare with.
--quick (4,000 taps in batches of 1,000) takes under two minutes, a minute of it migrating
the bench's database.

The baseline then writes the same credited rows (taps, trips, claims, transfers, lots and
the account counters) with raw SQL (COPY and one UPDATE per account kind), the floor any
ingestion path could reach on this database, and prints both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    in_processes,
    residents_seed,
    scratch_database,
    signed_pushes,
)

TAPS_URL = "/api/v1/partners/transit/taps"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--taps", type=int, default=100_000, help="taps to push (default 100000)")
    p.add_argument(
        "--cards", type=int, default=10_000, help="residents with a linked card (default 10000)"
    )
    p.add_argument("--batch", type=int, default=1000, help="taps per signed request (default 1000)")
    p.add_argument(
        "--workers", type=int, default=2, help="processes pushing batches at once (default 2)"
    )
    p.add_argument(
        "--db-name",
        default="",
        help="the bench's own database (default: DATABASE_URL's name + _bench_transit)",
    )
    p.add_argument("--keep-db", action="store_true", help="leave the bench database in place")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--quick",
        action="store_true",
        help="4,000 taps, 400 cards, batches of 1,000: under two minutes with the bulk path",
    )
    args = p.parse_args()
    if args.quick:
        args.taps, args.cards, args.batch = 4_000, 400, 1_000
    return args


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DEBUG"] = "False"
    with scratch_database(
        suffix="bench_transit", db_name=args.db_name, keep=args.keep_db, reuse=False
    ) as scratch:
        args.db_name = scratch.name
        run(args)


def run(args) -> None:
    import django

    django.setup()
    import logging

    from django.core.management import call_command

    logging.disable(logging.WARNING)
    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"database {args.db_name} migrated in {time.perf_counter() - t0:.1f} s")

    operator, cards = seed(args)
    taps = make_taps(args, cards)
    api_seconds, report = push(args, operator, taps)
    trips, claims = verify(args, len(taps), report)
    base_seconds, base_rows = baseline(args, operator, taps)

    api_tps = len(taps) / api_seconds
    base_tps = len(taps) / base_seconds
    print()
    from django.conf import settings

    crediting = (
        "usual trips set-based, the rest one at a time"
        if settings.CARBON_FEED_BULK_CREDIT
        else "every trip one at a time (CARBON_FEED_BULK_CREDIT=False)"
    )
    print(
        f"API: the whole HTTP stack in-process (django.test.Client), {args.workers} worker "
        f"process(es), signed batches of {args.batch}; crediting: {crediting}:"
    )
    print(
        f"  {len(taps)} taps -> {trips} trips -> {claims} credited claims"
        f" in {api_seconds:.1f} s"
        f" = {api_tps:,.0f} taps/s end to end"
    )
    print("Baseline, raw SQL (COPY + UPDATE) of the same credited rows:")
    print(
        f"  {base_rows:,} rows in {base_seconds:.2f} s = {base_rows / base_seconds:,.0f} rows/s"
        f" = {base_tps:,.0f} taps/s equivalent"
    )
    print(
        f"Ratio: the API path runs at 1/{base_tps / api_tps:.1f} of the raw-SQL floor "
        f"({api_tps / base_tps:.1%})"
    )


# --- setup ------------------------------------------------------------------------------------


def seed(args):
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from carbon.adapters.transit.cards import card_hash
    from carbon.adapters.transit.models import TransitCard
    from carbon.services.catalogue import catalogue_seed
    from carbon.services.partners import partner_create

    t0 = time.perf_counter()
    start = timezone.now() - timedelta(days=400)
    catalogue_seed(valid_from=start, codes={"metro", "bus"})
    operator = partner_create(name="Wuhan Metro", kind="transit_operator")
    call_command("load_transit", demo=True, verbosity=0)

    numbers = [f"6227{i:012d}" for i in range(args.cards)]
    users = residents_seed(
        args.cards, email="rider{i}@bench.carbon.city", consent_scope="transit_card"
    )
    with transaction.atomic():
        TransitCard.objects.bulk_create(
            [
                # Confirmed as if the operator had confirmed each link: only those earn.
                TransitCard(
                    user=u,
                    card_hash=card_hash(n),
                    last_digits=n[-4:],
                    label="bench",
                    status="confirmed",
                    confirmed_via="partner",
                )
                for u, n in zip(users, numbers, strict=True)
            ],
            batch_size=2000,
        )
    print(
        f"seeded {args.cards} residents with linked cards and consent"
        f" in {time.perf_counter() - t0:.1f} s"
    )
    return operator, [card_hash(n) for n in numbers]


def make_taps(args, cards: list[str]) -> list[dict]:
    """Entry/exit pairs: ~80 % metro anywhere on the network, ~20 % bus on one line; a card's
    trips are on different days, so none overlap; all within the 7-day claim window."""
    from django.utils import timezone

    from carbon.adapters.transit.models import LineStop
    from carbon.adapters.transit.network import network

    rng = random.Random(args.seed)
    net = network()
    metro = [s.id for s in net.stations.values() if s.mode == "metro"]
    by_id = net.stations_by_id
    bus_lines: dict[str, list[str]] = {}
    for stop in (
        LineStop.objects.filter(line__mode="bus")
        .select_related("line", "station")
        .order_by("sequence")
    ):
        bus_lines.setdefault(stop.line.code, []).append(stop.station.code)
    trips_per_card = max(1, args.taps // 2 // len(cards))
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    taps: list[dict] = []
    n = 0
    for digest in cards:
        for day in range(trips_per_card):
            if len(taps) >= args.taps:
                break
            start = (
                today
                - timedelta(days=day % 5 + 1, hours=-rng.uniform(7, 21))
                - timedelta(days=5 * (day // 5))
            )
            if rng.random() < 0.8:
                a, b = rng.sample(metro, 2)
                metres = net.route(a, b)[0]
                minutes = metres / 1000 / 32 * 60 + rng.uniform(2, 6)
                pair = [
                    (by_id[a].code, None, "metro", "in", start),
                    (by_id[b].code, None, "metro", "out", start + timedelta(minutes=minutes)),
                ]
            else:
                line = rng.choice(sorted(bus_lines))
                x, y = sorted(rng.sample(range(len(bus_lines[line])), 2))
                pair = [
                    (bus_lines[line][x], line, "bus", "in", start),
                    (
                        bus_lines[line][y],
                        line,
                        "bus",
                        "out",
                        start + timedelta(minutes=4 * (y - x) + 3),
                    ),
                ]
            for station, line, mode, direction, at in pair:
                n += 1
                row = {
                    "record_id": f"t{n}",
                    "card_hash": digest,
                    "station": station,
                    "mode": mode,
                    "direction": direction,
                    "at": at.isoformat(),
                }
                if line:
                    row["line"] = line
                taps.append(row)
    taps.sort(key=lambda r: r["at"])
    print(f"generated {len(taps)} taps for {len(cards)} cards ({trips_per_card} trips a card)")
    return taps


# --- the API run -----------------------------------------------------------------------------


def push(args, operator, taps: list[dict]) -> tuple[float, dict]:
    """Push the batches, in time order, from --workers processes (each takes every n-th
    batch, so consecutive batches run at the same time, as with an operator's parallel
    uploads). Each process runs the whole Django stack in-process."""
    batches = [taps[i : i + args.batch] for i in range(0, len(taps), args.batch)]
    shares = [
        [json.dumps({"taps": batch}).encode() for batch in batches[w :: args.workers]]
        for w in range(args.workers)
    ]
    spans = in_processes(
        signed_pushes,
        [(TAPS_URL, operator.key_id, operator.secret, share, {}) for share in shares],
    )
    totals = {"accepted": 0, "duplicates": 0, "errors": 0, "review": 0, "batches": 0}
    for _, _, answers in spans:
        for data in answers:
            for key in ("accepted", "duplicates", "errors"):
                totals[key] += data[key]
            totals["review"] += data["trips"]["review"]
            totals["batches"] += 1
    # Each process timed its own uploads; perf_counter is one system-wide clock on Linux.
    return max(end for _, end, _ in spans) - min(start for start, _, _ in spans), totals


def verify(args, n_taps: int, report: dict) -> tuple[int, int]:
    from django.core.management import call_command

    from carbon.adapters.transit.models import Tap, Trip
    from carbon.models import Claim, ClaimStatus

    credited = Claim.objects.filter(status=ClaimStatus.CREDITED).count()
    print(
        f"stored: {Tap.objects.count()} taps, {Trip.objects.count()} trips,"
        f" {credited} credited claims; "
        f"row errors {report['errors']}, trips in review {report['review']}"
    )
    assert report["accepted"] == n_taps and report["errors"] == 0, report
    assert Tap.objects.filter(trip__isnull=True).count() == 0, "unpaired taps left"
    t0 = time.perf_counter()
    call_command("ledger_check", verbosity=0)
    print(f"ledger_check passed ({time.perf_counter() - t0:.1f} s)")
    return Trip.objects.count(), credited


# --- the raw-SQL baseline ---------------------------------------------------------------------


def baseline(args, operator, taps: list[dict]) -> tuple[float, int]:
    """COPY the rows the API run produced (new ids and keys), and bump the account counters."""
    from django.db import connection, transaction
    from django.db.models import Max
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    from carbon.adapters.transit.models import Station, Tap, TransitCard, TransitLine, Trip
    from carbon.models import Account, AccountKind, Behaviour, Claim, EmissionFactor, Lot, Transfer

    stations = dict(Station.objects.values_list("code", "id"))
    lines = dict(TransitLine.objects.values_list("code", "id"))
    accounts = dict(TransitCard.objects.values_list("card_hash", "user_id"))
    account_of = dict(
        Account.objects.filter(kind=AccountKind.RESIDENT).values_list("user_id", "id")
    )
    issuance = list(Account.objects.filter(kind=AccountKind.ISSUANCE).values_list("id", flat=True))
    behaviours = {b.code: b for b in Behaviour.objects.all()}
    factors = {f.behaviour_id: f.pk for f in EmissionFactor.objects.all()}
    receipt = json.dumps(
        Claim.objects.filter(status="credited").values_list("receipt", flat=True).first()
    )
    partner_id = operator.partner.pk
    now = timezone.now()

    def next_id(model) -> int:
        return (model.objects.aggregate(m=Max("id"))["m"] or 0) + 1_000_000

    tap_id, trip_id, transfer_id, lot_id = (
        next_id(Tap),
        next_id(Trip),
        next_id(Transfer),
        next_id(Lot),
    )
    tap_rows, trip_rows, claim_rows, transfer_rows, lot_rows = [], [], [], [], []
    credits: dict[int, int] = {}
    open_in: dict[str, dict] = {}
    for row in taps:
        at = parse_datetime(row["at"])
        if row["direction"] == "in":
            open_in[row["card_hash"]] = {**row, "at": at}
            continue
        entry = open_in.pop(row["card_hash"])
        user_id = accounts[row["card_hash"]]
        behaviour = behaviours[row["mode"]]
        amount = 381 if row["mode"] == "metro" else 150
        claim_id = uuid.uuid4()
        trip_rows.append(
            (
                trip_id,
                row["card_hash"],
                partner_id,
                row["mode"],
                stations[entry["station"]],
                stations[row["station"]],
                entry["at"],
                at,
                4860,
                "claimed",
                "",
                "",
                claim_id,
                now,
            )
        )
        for t in (entry, {**row, "at": at}):
            tap_rows.append(
                (
                    tap_id,
                    partner_id,
                    f"baseline-{t['record_id']}",
                    "0" * 64,
                    t["card_hash"],
                    stations[t["station"]],
                    lines.get(t.get("line")),
                    t["mode"],
                    t["direction"],
                    t["at"],
                    now,
                    trip_id,
                )
            )
            tap_id += 1
        claim_rows.append(
            (
                claim_id,
                user_id,
                behaviour.pk,
                "4.860",
                entry["at"],
                "transit",
                json.dumps({"trip": trip_id}),
                partner_id,
                f"baseline-trip:{trip_id}",
                "0" * 64,
                "credited",
                receipt,
                amount,
                factors[behaviour.pk],
                transfer_id,
                now,
                now,
                None,
                "",
                None,
            )
        )
        debit = issuance[transfer_id % len(issuance)]
        transfer_rows.append(
            (
                transfer_id,
                f"baseline-claim:{claim_id}:award",
                "0" * 64,
                debit,
                account_of[user_id],
                amount,
                "posted",
                "award",
                None,
                None,
                None,
                "green_travel",
                f"{behaviour.name}: 4.86 km",
                f"claim:{claim_id}",
                None,
                now,
            )
        )
        lot_rows.append(
            (
                lot_id,
                account_of[user_id],
                transfer_id,
                "green_travel",
                amount,
                amount,
                now + timedelta(days=365),
            )
        )
        credits[account_of[user_id]] = credits.get(account_of[user_id], 0) + amount
        credits[-debit] = credits.get(-debit, 0) + amount
        trip_id += 1
        transfer_id += 1
        lot_id += 1

    def columns(model) -> list[str]:
        return [f.column for f in model._meta.concrete_fields]

    # Trips refer to claims and claims to transfers: insert in dependency order.
    plan = [
        (Transfer, transfer_rows),
        (Claim, claim_rows),
        (Trip, trip_rows),
        (Tap, tap_rows),
        (Lot, lot_rows),
    ]
    total_rows = sum(len(rows) for _, rows in plan)
    resident_ids = [a for a in credits if a > 0]
    system_ids = [-a for a in credits if a < 0]
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        for model, rows in plan:
            cols = ", ".join(columns(model))
            with raw.copy(f"COPY {model._meta.db_table} ({cols}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
        raw.execute(
            "UPDATE carbon_account a SET credits_posted = a.credits_posted + v.g, "
            "lifetime_g = a.lifetime_g + v.g "  # the service bumps GET /me's lifetime too
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, g) WHERE a.id = v.id",
            [resident_ids, [credits[a] for a in resident_ids]],
        )
        raw.execute(
            "UPDATE carbon_account a SET debits_posted = a.debits_posted + v.g "
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, g) WHERE a.id = v.id",
            [system_ids, [credits[-a] for a in system_ids]],
        )
    seconds = time.perf_counter() - t0
    total_rows += len(resident_ids) + len(system_ids)
    return seconds, total_rows


if __name__ == "__main__":
    main()
