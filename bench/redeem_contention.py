"""Redemptions under contention on PostgreSQL, through the service layer, beside the bare
ledger operations they are made of; the ratio shows what the redemption layer costs.

    CARBON_LOCAL=1 DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon \\
        .venv/bin/python bench/redeem_contention.py
    ... bench/redeem_contention.py --clients 50 --ops 20 --processes 2

Like bench/ledger.py, it writes nothing to the database DATABASE_URL names: it creates a
scratch database (`<DATABASE_URL's database>_bench_redeem`, --db-name) on that server,
migrates it, runs, and drops it (--keep leaves it). The role needs CREATEDB. --quick: 5
operations per client.

--clients concurrent clients (threads spread over --processes processes, each with its own
connection), released together on a barrier; each does --ops operations, timed one by one:

* bare:      carbon.services.ledger.ledger_hold then ledger_post, on the client's own
             resident (two transactions, as a redemption and its use at the till are);
* plentiful: rewards' voucher_issue on one of 5 offers with ample stock (the resident's lock,
             the limit count, the hold, the voucher, the stock UPDATE), then merchant_redeem
             of its code at the till (the voucher's lock, the post, the settlement line);
* scarce:    voucher_issue on one offer with stock for a quarter of the attempts: every
             client hits the same offer row; three quarters are refused out_of_stock.

It prints operations per second and p50/p99 latency per mode, the plentiful/bare ratio
(target: at least 0.5) and checks after the run: ledger_check() finds nothing, the scarce
offer sold exactly its stock, and no refused attempt left a hold.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# One connection per client thread, opened once and kept for the run (no pool to queue on).
os.environ["DB_POOL_MAX_SIZE"] = "0"

from bench.harness import (  # noqa: E402
    fail,
    in_processes,
    in_threads,
    machine_facts,
    migrate,
    percentile,
    scratch_database,
)

PLENTIFUL_OFFERS = 5
PRICE_G = 10


def setup_django() -> None:
    import django

    django.setup()


# --- the world -------------------------------------------------------------------------------


def create_world(clients: int, ops: int) -> None:
    """Residents per mode and client (funded), a merchant with a till, the offers."""
    import uuid
    from datetime import timedelta
    from decimal import Decimal

    from django.conf import settings
    from django.utils import timezone

    from carbon.models import AccountKind, Partner, User
    from carbon.services.ledger import ledger_award, system_account
    from rewards.merchants.models import MerchantStaff
    from rewards.offers.models import Offer

    merchant = Partner.objects.create(name="Bench Grocer", kind=Partner.Kind.MERCHANT)
    till = User.objects.create_user(
        "till@bench.invalid", None, role=User.Role.MERCHANT_STAFF, partner=merchant
    )
    MerchantStaff.objects.create(user=till, merchant=merchant)
    expires_at = timezone.now() + timedelta(days=365)
    for mode in ("bare", "plentiful", "scarce"):
        for c in range(clients):
            user = User.objects.create_user(f"{mode}-{c}@bench.invalid", None)
            ledger_award(
                user=user,
                amount_g=PRICE_G * ops * 4,
                category="green_travel",
                idempotency_key=f"bench:fund:{uuid.uuid4()}",
                description="Bench funds",
                expires_at=expires_at,
            )
    for kind in (AccountKind.REDEMPTION, AccountKind.ISSUANCE):
        for shard in range(max(1, settings.LEDGER_SYSTEM_SHARDS)):
            system_account(kind=kind, shard=shard)

    def offer(title: str, stock: int) -> None:
        Offer.objects.create(
            kind="voucher",
            title_zh=title,
            title_en=title,
            price_g=PRICE_G,
            stock_total=stock,
            stock_left=stock,
            partner=merchant,
            partner_value_cny=Decimal("1.00"),
            valid_from=timezone.now() - timedelta(days=1),
        )

    for n in range(PLENTIFUL_OFFERS):
        offer(f"plentiful-{n}", clients * ops)
    offer("scarce", scarce_stock(clients, ops))


def scarce_stock(clients: int, ops: int) -> int:
    return max(1, clients * ops // 4)


# --- one process's clients -----------------------------------------------------------------


def worker(mode: str, proc: int, client_ids: list[int], ops: int, run: str, *, barrier):
    """This process's clients, a thread each; each one's (start, end of its timed part,
    latencies, refusals by code)."""
    setup_django()
    from django.db import connection

    from carbon.errors import DomainError
    from carbon.models import Partner, User
    from carbon.services.ledger import ledger_hold, ledger_post
    from rewards.merchants.redemptions import merchant_redeem
    from rewards.offers.models import Offer
    from rewards.vouchers.services import voucher_issue

    till = User.objects.get(email="till@bench.invalid")
    merchant = Partner.objects.get(name="Bench Grocer")
    plentiful = list(
        Offer.objects.filter(title_en__startswith="plentiful-").values_list("pk", flat=True)
    )
    scarce = Offer.objects.get(title_en="scarce").pk
    connection.close()

    def client(c: int) -> tuple:
        user = User.objects.get(email=f"{mode}-{c}@bench.invalid")
        latencies: list[float] = []
        refused: dict[str, int] = {}
        barrier.wait(timeout=600)
        began = time.perf_counter()
        for i in range(ops):
            key = f"{run}:{c}:{i}"
            t0 = time.perf_counter()
            try:
                if mode == "bare":
                    hold = ledger_hold(
                        user=user, amount_g=PRICE_G, idempotency_key=key, description="Bench"
                    )
                    ledger_post(pending_id=hold.pk)
                elif mode == "plentiful":
                    offer_id = plentiful[(c + i) % len(plentiful)]
                    voucher, _ = voucher_issue(user=user, offer_id=offer_id, idempotency_key=key)
                    merchant_redeem(staff=till, merchant=merchant, code=voucher.code)
                else:
                    voucher_issue(user=user, offer_id=scarce, idempotency_key=key)
            except DomainError as exc:
                refused[exc.code.value] = refused.get(exc.code.value, 0) + 1
            latencies.append(time.perf_counter() - t0)
        return began, time.perf_counter(), latencies, refused

    return in_threads(client, [(c,) for c in client_ids], barrier=barrier)


def run_mode(mode: str, clients: int, processes: int, ops: int) -> dict:
    groups = [list(range(p, clients, processes)) for p in range(processes)]
    wall = time.perf_counter()
    # The barrier counts client threads: all of them start together, across processes.
    reports = in_processes(
        worker,
        [(mode, p, groups[p], ops, f"{mode}-{p}") for p in range(processes)],
        parties=clients,
    )
    wall = time.perf_counter() - wall
    clients = [client for process in reports for client in process]
    latencies = sorted(x for _, _, mine, _ in clients for x in mine)
    refused: dict[str, int] = {}
    for *_, counts in clients:
        for code, n in counts.items():
            refused[code] = refused.get(code, 0) + n
    # From the barrier's release to the last client's last operation (perf_counter is one
    # system-wide clock on Linux, so processes' times compare).
    seconds = max(end for _, end, *_ in clients) - min(began for began, *_ in clients)
    return {
        "mode": mode,
        "ops": len(latencies),
        "seconds": seconds,
        "rate": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "refused": refused,
        "wall": wall,
    }


def check(clients: int, ops: int, results: dict) -> list[str]:
    from carbon.models import Transfer, TransferFlag
    from carbon.services.ledger_check import ledger_check
    from rewards.offers.models import Offer
    from rewards.vouchers.models import Voucher

    problems = [str(v) for v in ledger_check()]
    stock = scarce_stock(clients, ops)
    scarce = Offer.objects.get(title_en="scarce")
    sold = Voucher.objects.filter(offer=scarce).count()
    if scarce.stock_left != 0 or sold != stock:
        problems.append(f"scarce offer: {sold} vouchers for a stock of {stock}")
    refused = results["scarce"]["refused"]
    if refused.get("out_of_stock", 0) + sold != clients * ops or set(refused) - {"out_of_stock"}:
        problems.append(f"scarce offer: refusals {refused} besides {sold} sold")
    unresolved = Transfer.objects.unresolved_pending().count()
    if unresolved != stock:  # the scarce winners' holds wait for a till; nothing else may
        problems.append(f"{unresolved} holds pending, expected {stock}")
    posted = Voucher.objects.filter(status="redeemed").count()
    if posted != clients * ops or Transfer.objects.filter(flag=TransferFlag.PENDING).count() != (
        2 * clients * ops + stock
    ):
        problems.append(f"plentiful: {posted} vouchers redeemed of {clients * ops}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--ops", type=int, default=20, help="operations per client (20)")
    parser.add_argument(
        "--processes", type=int, default=0, help="processes the clients are spread over "
        "(default: the CPU count, at most the clients)",
    )  # fmt: skip
    parser.add_argument(
        "--db-name", default="", help="scratch database (<DATABASE_URL db>_bench_redeem)"
    )
    parser.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    parser.add_argument("--quick", action="store_true", help="5 operations per client")
    args = parser.parse_args()
    if args.quick:
        args.ops = min(args.ops, 5)
    processes = args.processes or min(args.clients, os.cpu_count() or 1)
    if args.clients < 1 or args.ops < 1 or processes < 1:
        fail("--clients, --ops and --processes must be positive")

    with scratch_database(suffix="bench_redeem", db_name=args.db_name, keep=args.keep):
        setup_django()
        from django.db import connection

        migrate()
        create_world(args.clients, args.ops)
        print(
            f"{machine_facts()}; {args.clients} clients x {args.ops} ops "
            f"over {processes} process(es)"
        )
        results = {m: run_mode(m, args.clients, processes, args.ops) for m in
                   ("bare", "plentiful", "scarce")}  # fmt: skip

        print()
        print(
            f"{'mode':<10} {'ops':>6} {'seconds':>8} {'ops/s':>7} {'p50 ms':>7} {'p99 ms':>7}  refused"
        )
        for r in results.values():
            print(
                f"{r['mode']:<10} {r['ops']:>6} {r['seconds']:>8.2f} {r['rate']:>7.0f} "
                f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}  {r['refused'] or '-'}"
            )
        ratio = results["plentiful"]["rate"] / results["bare"]["rate"]
        print()
        print(f"plentiful redemptions / bare hold+post: {ratio:.2f} (target >= 0.5)")
        print(f"p99 of a redemption at {args.clients} clients: "
              f"{results['plentiful']['p99_ms']:.0f} ms (target < 100)")  # fmt: skip
        problems = check(args.clients, args.ops, results)
        print("invariants: " + ("ok (ledger_check clean, stock exact)" if not problems else ""))
        for problem in problems:
            print(f"  VIOLATION: {problem}")
        connection.close()
        if problems:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
