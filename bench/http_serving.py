"""Requests per second of the read endpoints through the production stack (uvicorn worker
processes on one port, PostgreSQL, Redis), with 1 and 2 workers, beside a bare Django view
served by the same stack (bench/http_settings.py adds it; the product never has it).

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/http_serving.py [--quick] [--seconds 8] [--clients 16]

It works on a scratch database of its own on DATABASE_URL's server (`<name>_http_serving`,
bench/harness.py: dropped at the end, or kept for the next run with `--reuse`), seeds the
demo city there (`seed_demo`), signs a
token for a demo resident, then for each worker count starts the server and sends GET
/api/v1/me, /behaviours, /ledger, /claims and /bench/bare from `--clients` keep-alive
connections, counting 200 answers (anything else stops the run). Each endpoint gets
`--seconds` in all after a warm-up, in `--rounds` slices taken in turn (me, behaviours, ...,
bare, me, ...), so a change of load on a shared machine falls on every endpoint alike rather
than on whichever came last. Prints requests per second, each endpoint's ratio to the bare
view, and 2 workers over 1. Targets (issue 13): each endpoint >= 0.5 of the bare view, 2
workers >= 1.6x one.
The load generator is one asyncio process on the same machine: on 2 cores it takes CPU
from the server, more so at the bare view's rate (it flatters the ratios a little and
caps the scaling: say so beside the figures). `--quick` finishes in under two minutes.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The repository root on the path, so `bench.http_settings` (the server's settings) imports.
# (This script was bench/http_serving.py once: as a module named `http` beside the other scripts it
# shadowed the standard library's `http` for every one of them.)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from urllib.parse import quote  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("CARBON_LOCAL", "1")

from bench.harness import fail, machine_facts, scratch_database  # noqa: E402
from tests.serving import free_port, server_env  # noqa: E402

ENDPOINTS = ("/api/v1/me", "/api/v1/behaviours", "/api/v1/ledger", "/api/v1/claims", "/bench/bare")
BARE = "/bench/bare"


def resident():
    """A demo resident with a median number of ledger entries (seeding the city if empty)."""
    from django.core.management import call_command
    from django.db.models import Count

    from carbon.models import Behaviour, User

    call_command("migrate", verbosity=0, interactive=False)
    if not Behaviour.objects.exists():
        call_command("seed_demo", size=300, verbosity=0)
    people = list(
        User.objects.residents()
        .annotate(n=Count("ledger_account__credit_transfers"))
        .filter(n__gt=0)
        .order_by("n", "pk")
    )
    if not people:
        fail("no demo resident with ledger entries: run manage.py seed_demo")
    return people[len(people) // 2]


def server(workers: int, port: int, var_dir: Path, log: Path) -> subprocess.Popen:
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    credentials = f"{quote(db['USER'])}:{quote(db['PASSWORD'])}@{db['HOST']}:{db['PORT']}"
    env = server_env(
        var_dir,
        DATABASE_URL=f"postgis://{credentials}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,  # the token signed here must hold there
        DJANGO_SETTINGS_MODULE="bench.http_settings",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                str(Path(sys.executable).parent / "uvicorn"),
                "config.asgi:application",
                *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
                *("--backlog", "1024", "--lifespan", "off", "--no-proxy-headers"),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_up(base: str, proc: subprocess.Popen, log: Path, workers: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"server exited:\n{log.read_text()[-3000:]}"
        try:
            urllib.request.urlopen(f"{base}{BARE}", timeout=2)
            # Every worker up: uvicorn logs each one's start.
            if log.read_text().count("Application startup complete") >= workers or (
                "Waiting for application startup" not in log.read_text()
                and time.monotonic() > deadline - 50
            ):
                return
        except (OSError, urllib.error.HTTPError):
            pass
        assert time.monotonic() < deadline, f"server not up:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)


async def _client(port: int, request: bytes, stop: float, counts: list, bad: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < stop:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            if status != 200:
                bad.append((status, body[:300]))
                return
            counts[0] += 1
    finally:
        writer.close()


def _request(path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\nAccept-Language: en\r\n\r\n"
    ).encode()


async def _burst(port: int, request: bytes, clients: int, seconds: float, bad: list) -> int:
    counts = [0]
    stop = time.monotonic() + seconds
    await asyncio.gather(*(_client(port, request, stop, counts, bad) for _ in range(clients)))
    return counts[0]


async def _load(
    port: int, paths: tuple[str, ...], token: str, clients: int, seconds: float, rounds: int
) -> dict[str, float]:
    """Requests per second of each path: warmed up, then `rounds` slices of seconds/rounds
    each, the paths in turn."""
    bad: list = []
    # Warm-up: every worker's connections, caches and code paths.
    for path in paths:
        await _burst(port, _request(path, token), clients, 1.0, bad)
    served = dict.fromkeys(paths, 0)
    spent = dict.fromkeys(paths, 0.0)
    for _ in range(rounds):
        for path in paths:
            started = time.monotonic()
            served[path] += await _burst(
                port, _request(path, token), clients, seconds / rounds, bad
            )
            spent[path] += time.monotonic() - started
            if bad:
                raise SystemExit(f"{path}: answered {bad[0][0]}: {bad[0][1]!r}")
    return {path: served[path] / spent[path] for path in paths}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 s per endpoint (< 2 minutes)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="slices per endpoint, in turn")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the seeded database for the next --reuse run"
    )
    args = parser.parse_args()
    with scratch_database(suffix="http_serving", reuse=args.reuse):
        import django

        django.setup()
        from django.conf import settings

        if not settings.REDIS_URL:
            fail("needs REDIS_URL (the product's cache and channel layer in production)")
        run(args)


def run(args) -> None:
    from rest_framework_simplejwt.tokens import AccessToken

    seconds = 3.0 if args.quick else args.seconds
    user = resident()
    token = str(AccessToken.for_user(user))
    entries = user.ledger_account.credit_transfers.count()
    print(
        f"{machine_facts()}; uvicorn workers on one port, PostgreSQL + Redis; resident "
        f"#{user.pk} ({entries} ledger entries); {args.clients} keep-alive clients, "
        f"{seconds:.0f} s each in {args.rounds} turns (the load generator shares the cores)"
    )
    rates: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            port = free_port()
            log = Path(tmp) / f"server-{workers}.log"
            proc = server(workers, port, Path(tmp) / f"var-{workers}", log)
            try:
                wait_up(f"http://127.0.0.1:{port}", proc, log, workers)
                rates[workers] = asyncio.run(
                    _load(port, ENDPOINTS, token, args.clients, seconds, args.rounds)
                )
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    counts = args.workers
    header = "".join(f"{f'{w} worker(s) req/s':>20}{'of bare':>9}" for w in counts)
    scaling = len(counts) >= 2
    print(
        f"{'endpoint':22}{header}" + (f"{f'{counts[-1]}w / {counts[0]}w':>12}" if scaling else "")
    )
    for path in ENDPOINTS:
        cells = "".join(
            f"{rates[w][path]:>20.0f}{rates[w][path] / rates[w][BARE]:>9.2f}" for w in counts
        )
        ratio = f"{rates[counts[-1]][path] / rates[counts[0]][path]:>12.2f}" if scaling else ""
        print(f"{path:22}{cells}{ratio}")
    print("targets: each endpoint >= 0.50 of the bare view; 2 workers >= 1.60x one")


if __name__ == "__main__":
    main()
