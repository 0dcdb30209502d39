"""Keep the demo city moving: credit realistic claims through the real claim path
(claim_submit: rules, caps, the ledger, the boards' feed), about --rate a second, until
stopped (or --count claims). Run `seed_demo` first.

With the embedded default the channel layer is in memory, so pushes reach sockets only
through the ASGI process: run this beside `make run` and the boards, which live in the
shared database, are pushed by the server's push loop within a second.
"""

from __future__ import annotations

import random
import time
import uuid

from django.core.management.base import BaseCommand, CommandError

from carbon.errors import DomainError
from carbon.models import User
from carbon.services.claims import claim_submit
from carbon.services.people import consent_grant

# behaviour, quantity range, weight: what residents self-declare most
ACTS = [("metro", (2, 25), 5), ("bus", (1, 3), 3), ("own-bag", (1, 3), 2), ("walking", (1, 6), 2)]


class Command(BaseCommand):
    help = "Credit realistic demo claims live, about --rate a second."

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=2.0, help="claims per second")
        parser.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, rate: float, count: int, seed: int | None, **options):
        if rate <= 0:
            raise CommandError("--rate must be positive")
        rng = random.Random(seed)
        ids = list(
            User.objects.residents()
            .filter(email__endswith="@demo.carbon.city")
            .values_list("pk", flat=True)
        )
        if not ids:
            raise CommandError("no demo residents: run `manage.py seed_demo` first")
        consented: set[int] = set()
        done = credited = 0
        started = time.monotonic()
        try:
            while not count or done < count:
                user = User.objects.get(pk=rng.choice(ids))
                if user.pk not in consented:
                    for scope in ("transit_card", "retail", "phone_steps"):
                        consent_grant(user=user, scope=scope)
                    consented.add(user.pk)
                code, (low, high), _weight = rng.choices(ACTS, [a[2] for a in ACTS])[0]
                try:
                    claim, _created = claim_submit(
                        user=user,
                        behaviour_code=code,
                        quantity=rng.randint(low, high),
                        idempotency_key=str(uuid.uuid4()),
                    )
                    credited += claim.status == "credited"
                except DomainError as refused:  # caps and throttles say no, as they would
                    self.stderr.write(f"refused: {refused.code}")
                done += 1
                if done % 20 == 0:
                    self.stdout.write(f"{done} claims, {credited} credited")
                # Poisson arrivals at the asked rate.
                time.sleep(rng.expovariate(rate))
        except KeyboardInterrupt:
            pass
        self.stdout.write(
            f"{done} claims in {time.monotonic() - started:.0f} s, {credited} credited"
        )
