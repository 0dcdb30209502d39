"""Demo data of the offsets slice for `manage.py seed_demo`: a programme at the demo bank,
"Hankou Partner Bank" (one of the core's demo partners). Idempotent."""

from __future__ import annotations

from decimal import Decimal

from carbon.models import Partner
from rewards.offsets.models import BankProgramme

DEMO_BANK = "Hankou Partner Bank"
DEMO_PROGRAMME = "Green travel mortgage offset"


def offsets_demo_seed(*, stdout) -> None:
    bank = Partner.objects.filter(name=DEMO_BANK, kind=Partner.Kind.BANK).first()
    if bank is None:  # the core's demo partners were not loaded: nothing to attach it to
        return
    _, created = BankProgramme.objects.get_or_create(
        bank=bank,
        name=DEMO_PROGRAMME,
        defaults={
            "cny_per_kg": Decimal("2"),
            "min_grams": 100,
            "monthly_cap_g": 50_000,
            "monthly_cap_fen": 10_000,
            "budget_fen": 100_000_000,
        },
    )
    if created:
        stdout.write(f"offset programme {DEMO_PROGRAMME!r} at {DEMO_BANK}: 2 CNY per kg")
