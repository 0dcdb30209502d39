#!/usr/bin/env python
"""Bench: partner events pushed through the signed API into events and credits, on PostgreSQL,
set-based against one event at a time.

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon \
        .venv/bin/python bench/partner_ingest.py [--events N --residents N --batch N --workers N]

Creates its own database (DATABASE_URL's name + _bench_partner, dropped at the end unless
--keep-db), migrates it, loads the bike-share behaviour, creates a platform partner and
--residents residents with a confirmed link and the bike-share consent, then pushes --events
events (bike rides over the last five days, about --unlinked of them from people nobody
linked) in signed batches through the whole HTTP stack in-process (Django's test client: URL
routing, DRF, signature check, the feed, claim rules, the ledger), from --workers processes
at once (each takes every n-th batch). It does so twice, with the same number of events for
other residents: once with the usual events of a batch stored and credited set-based
(CARBON_FEED_BULK_CREDIT=True, the default), once one event at a time (False: the per-event
path, ~28 statements an event). It checks every event stored, every linked one credited, and
runs ledger_check.

The baseline then writes the same rows the set-based run wrote (events, claims, transfers,
lots and the account counters) with raw SQL (COPY and one UPDATE per account kind), the floor
any ingestion path could reach on this database, and prints the three rates and their ratios.
--quick (2,000 events set-based, 400 one at a time, in batches of 500) takes under two
minutes, most of it migrating the bench's database: on a loaded 2-core machine that alone can
take over a minute, so --reuse keeps the migrated database and starts from it next time (each
run makes its own partner, residents and ids).
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

EVENTS_URL = "/api/v1/partners/events"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--events", type=int, default=20_000, help="events to push per path (default 20000)"
    )
    p.add_argument(
        "--one-by-one-events",
        type=int,
        default=0,
        help="events to push one at a time (default a fifth of --events: the slow path)",
    )
    p.add_argument(
        "--residents",
        type=int,
        default=4_000,
        help="residents with a linked account, per path (default 4000)",
    )
    p.add_argument(
        "--batch", type=int, default=1000, help="events per signed request (default 1000)"
    )
    p.add_argument(
        "--workers", type=int, default=2, help="processes pushing batches at once (default 2)"
    )
    p.add_argument(
        "--unlinked",
        type=float,
        default=0.1,
        help="share of events from people nobody linked (default 0.1)",
    )
    p.add_argument(
        "--db-name",
        default="",
        help="the bench's own database (default: DATABASE_URL's name + _bench_partner)",
    )
    p.add_argument("--keep-db", action="store_true", help="leave the bench database in place")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="use the bench database if it exists (migrated by an earlier --reuse run), keep it",
    )
    p.add_argument("--seed", type=int, default=11)
    p.add_argument(
        "--quick",
        action="store_true",
        help="2,000 events set-based, 400 one at a time, 400 residents a path, batches of 500",
    )
    args = p.parse_args()
    if args.quick:
        args.events, args.residents, args.batch = 2_000, 400, 500
    args.one_by_one_events = args.one_by_one_events or max(1, args.events // 5)
    if args.reuse:
        args.keep_db = True
    return args


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DEBUG"] = "False"
    with scratch_database(
        suffix="bench_partner", db_name=args.db_name, keep=args.keep_db, reuse=args.reuse
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

    run_tag = uuid.uuid4().hex[:6]  # this run's partner, residents and ids (see --reuse)
    platform = seed_partner(run_tag)
    rates = {}
    bulk_events: list[dict] = []
    # The set-based path first, then the per-event path for other residents: each path
    # starts with residents credited nothing yet, on tables of about the same size.
    for label, in_bulk in (("set-based", True), ("one at a time", False)):
        prefix = f"{run_tag}-{'b' if in_bulk else 'p'}"
        count = args.events if in_bulk else args.one_by_one_events
        refs = seed_residents(args, platform, prefix=prefix)
        events = make_events(args, refs, prefix=prefix, count=count)
        # Two batches a worker at least, so every worker has work on the shorter path too
        # (one event at a time, a batch's size changes little).
        batch = min(args.batch, max(1, count // (2 * args.workers)))
        seconds, report = push(args, platform, events, in_bulk=in_bulk, batch=batch)
        verify(events, report, prefix=prefix)
        rates[label] = len(events) / seconds
        print(
            f"  {label}: {len(events)} events ({report['linked']} of linked residents) in "
            f"{seconds:.1f} s = {rates[label]:,.0f} events/s end to end (batches of {batch})"
        )
        if in_bulk:
            bulk_events = events
    t0 = time.perf_counter()
    call_command("ledger_check", verbosity=0)
    print(f"ledger_check passed ({time.perf_counter() - t0:.1f} s)")
    base_seconds, base_rows = baseline(platform, prefix=f"{run_tag}-b")
    rates["COPY"] = len(bulk_events) / base_seconds

    print()
    print(
        f"API: the whole HTTP stack in-process (django.test.Client), {args.workers} worker "
        f"process(es), signed batches, {args.unlinked:.0%} of events unlinked:"
    )
    print(f"  set-based (the usual events of a batch at once): {rates['set-based']:,.0f} events/s")
    print(
        f"  one at a time (CARBON_FEED_BULK_CREDIT=False):   {rates['one at a time']:,.0f} events/s"
    )
    print("Baseline, raw SQL (COPY + UPDATE) of the rows the set-based run wrote:")
    print(
        f"  {base_rows:,} rows in {base_seconds:.2f} s = {rates['COPY']:,.0f} events/s equivalent"
    )
    print(
        f"Ratios: set-based / one at a time = {rates['set-based'] / rates['one at a time']:.1f}x;"
        f" set-based runs at 1/{rates['COPY'] / rates['set-based']:.1f} of the raw-SQL floor,"
        f" one at a time at 1/{rates['COPY'] / rates['one at a time']:.1f}"
    )


# --- setup ------------------------------------------------------------------------------------


def seed_partner(run_tag: str):
    from django.utils import timezone

    from carbon.services.catalogue import catalogue_seed
    from carbon.services.partners import partner_create

    (bike,) = catalogue_seed(valid_from=timezone.now() - timedelta(days=400), codes={"bike-share"})
    platform = partner_create(name=f"QingJu {run_tag}", kind="platform")
    platform.partner.behaviours.add(bike)
    return platform


def seed_residents(args, platform, *, prefix: str) -> list[str]:
    """Residents with the bike-share consent and a confirmed link (as if the partner had
    confirmed each), their accounts opened; returns their refs at the partner."""
    from django.db import transaction
    from django.utils import timezone

    from carbon.adapters.partner_events.matching import external_ref_hash
    from carbon.adapters.partner_events.models import PartnerLink

    t0 = time.perf_counter()
    partner = platform.partner
    refs = [f"{prefix}-rider-{i}" for i in range(args.residents)]
    users = residents_seed(
        args.residents, email=f"{prefix}-rider{{i}}@bench.carbon.city", consent_scope="bike_share"
    )
    with transaction.atomic():
        PartnerLink.objects.bulk_create(
            [
                PartnerLink(
                    user=u,
                    partner=partner,
                    external_ref_hash=external_ref_hash(partner=partner, external_ref=ref),
                    status="confirmed",
                    confirmed_via="partner",
                    confirmed_at=timezone.now(),
                )
                for u, ref in zip(users, refs, strict=True)
            ],
            batch_size=2000,
        )
    print(
        f"seeded {args.residents} residents ({prefix}) with a confirmed link and consent"
        f" in {time.perf_counter() - t0:.1f} s"
    )
    return refs


def make_events(args, refs: list[str], *, prefix: str, count: int) -> list[dict]:
    """Bike rides of 1-6 km at 12-20 km/h over the last five days, at most three a resident a
    day (never the daily cap), and a share from people nobody linked. In time order."""
    from django.utils import timezone

    rng = random.Random(f"{args.seed}-{prefix}")
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    linked = round(count * (1 - args.unlinked))
    if linked > 15 * len(refs):
        sys.exit("at most 15 rides a resident (3 a day for 5 days): add --residents")
    events: list[dict] = []
    for n in range(count):
        if n < linked:
            ref = refs[n % len(refs)]
            day, slot = divmod(n // len(refs), 3)
        else:
            ref, day, slot = f"{prefix}-nobody-{n}", rng.randrange(5), rng.randrange(3)
        km = round(rng.uniform(1, 6), 2)
        when = today - timedelta(days=1 + day, hours=-(7 + 4 * slot + rng.uniform(0, 2)))
        events.append(
            {
                "event_id": f"{prefix}-ev-{n}",
                "behaviour": "bike-share",
                "user_ref": ref,
                "occurred_at": when.isoformat(),
                "distance_km": km,
                "duration_s": int(km / rng.uniform(12, 20) * 3600),
            }
        )
    events.sort(key=lambda e: e["occurred_at"])
    return events


# --- the API run -----------------------------------------------------------------------------


def push(args, platform, events: list[dict], *, in_bulk: bool, batch: int) -> tuple[float, dict]:
    """Push the batches from --workers processes (each takes every n-th batch, so
    consecutive batches run at the same time). Each process runs the whole Django stack."""
    batches = [events[i : i + batch] for i in range(0, len(events), batch)]
    shares = [
        [json.dumps({"events": b}).encode() for b in batches[w :: args.workers]]
        for w in range(args.workers)
    ]
    overrides = {"CARBON_FEED_BULK_CREDIT": in_bulk}
    spans = in_processes(
        signed_pushes,
        [(EVENTS_URL, platform.key_id, platform.secret, share, overrides) for share in shares],
    )
    totals = {"accepted": 0, "duplicate": 0, "error": 0, "credited": 0, "awaiting_link": 0}
    for _, _, answers in spans:
        for data in answers:
            for key in ("accepted", "duplicate", "error"):
                totals[key] += data[key]
            for row in data["rows"]:
                if row.get("claim_status") in ("credited", "awaiting_link"):
                    totals[row["claim_status"]] += 1
    totals["linked"] = sum(1 for e in events if "-nobody-" not in e["user_ref"])
    # Each process timed its own uploads; perf_counter is one system-wide clock on Linux.
    return max(end for _, end, _ in spans) - min(start for start, _, _ in spans), totals


def verify(events: list[dict], report: dict, *, prefix: str) -> None:
    from carbon.adapters.partner_events.models import PartnerEvent
    from carbon.models import Claim, ClaimStatus

    stored = PartnerEvent.objects.filter(event_id__startswith=f"{prefix}-")
    credited = Claim.objects.filter(
        status=ClaimStatus.CREDITED, partner_event__event_id__startswith=f"{prefix}-"
    ).count()
    assert report["accepted"] == len(events) == stored.count(), report
    assert report["credited"] == report["linked"] == credited, (report, credited)
    assert report["awaiting_link"] == len(events) - report["linked"], report


# --- the raw-SQL baseline ---------------------------------------------------------------------


def baseline(platform, *, prefix: str) -> tuple[float, int]:
    """COPY the rows the set-based run wrote (new ids and keys) and bump the counters."""
    from django.db import connection, transaction
    from django.db.models import Max

    from carbon.adapters.partner_events.models import PartnerEvent
    from carbon.models import Account, AccountKind, Claim, Lot, Transfer

    columns = {
        model: [f.column for f in model._meta.concrete_fields]
        for model in (PartnerEvent, Claim, Transfer, Lot)
    }
    events = list(
        PartnerEvent.objects.filter(event_id__startswith=f"{prefix}-").values_list(
            *columns[PartnerEvent]
        )
    )
    claims = list(
        Claim.objects.filter(partner_event__event_id__startswith=f"{prefix}-").values_list(
            *columns[Claim]
        )
    )
    award_ids = [c[columns[Claim].index("award_id")] for c in claims]
    transfers = list(Transfer.objects.filter(pk__in=award_ids).values_list(*columns[Transfer]))
    lots = list(Lot.objects.filter(award_id__in=award_ids).values_list(*columns[Lot]))

    def offset(model) -> int:
        return (model.objects.aggregate(m=Max("id"))["m"] or 0) + 1_000_000

    shift = {model: offset(model) for model in (PartnerEvent, Transfer, Lot)}
    claim_ids = {c[0]: uuid.uuid4() for c in claims}

    def remap(model, row: tuple) -> tuple:
        out = dict(zip(columns[model], row, strict=True))
        out["id"] = claim_ids[out["id"]] if model is Claim else out["id"] + shift[model]
        if model is PartnerEvent:
            out["event_id"] = f"copy-{out['event_id']}"
            if out["claim_id"]:
                out["claim_id"] = claim_ids[out["claim_id"]]
        if model is Claim:
            out["idempotency_key"] = f"copy-{out['idempotency_key']}"
            out["award_id"] += shift[Transfer]
        if model is Transfer:
            out["idempotency_key"] = f"copy-{out['idempotency_key']}"
        if model is Lot:
            out["award_id"] += shift[Transfer]
        return tuple(json.dumps(v) if isinstance(v, dict | list) else v for v in out.values())

    credits: dict[int, int] = {}
    debits: dict[int, int] = {}
    for t in transfers:
        row = dict(zip(columns[Transfer], t, strict=True))
        credits[row["credit_account_id"]] = (
            credits.get(row["credit_account_id"], 0) + row["amount_g"]
        )
        debits[row["debit_account_id"]] = debits.get(row["debit_account_id"], 0) + row["amount_g"]
    assert set(debits) <= set(
        Account.objects.filter(kind=AccountKind.ISSUANCE).values_list("id", flat=True)
    )
    # Claims refer to transfers, events to claims: insert in dependency order.
    plan = [(Transfer, transfers), (Claim, claims), (PartnerEvent, events), (Lot, lots)]
    rows = [(model, [remap(model, r) for r in data]) for model, data in plan]
    total_rows = sum(len(data) for _, data in rows) + len(credits) + len(debits)
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        for model, data in rows:
            cols = ", ".join(columns[model])
            with raw.copy(f"COPY {model._meta.db_table} ({cols}) FROM STDIN") as copy:
                for r in data:
                    copy.write_row(r)
        raw.execute(
            "UPDATE carbon_account a SET credits_posted = a.credits_posted + v.g, "
            "lifetime_g = a.lifetime_g + v.g "
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, g) WHERE a.id = v.id",
            [list(credits), list(credits.values())],
        )
        raw.execute(
            "UPDATE carbon_account a SET debits_posted = a.debits_posted + v.g "
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, g) WHERE a.id = v.id",
            [list(debits), list(debits.values())],
        )
    seconds = time.perf_counter() - t0
    # The copies keep the ledger whole: the same check as after the API runs.
    from django.core.management import call_command

    call_command("ledger_check", verbosity=0)
    return seconds, total_rows


if __name__ == "__main__":
    main()
