"""A demo city worth watching: thousands of residents across the communities and districts
with months of credited activity, written set-based (bulk inserts) in a shape that keeps
every ledger invariant: each award a posted transfer from an issuance shard with its lot,
every counter the sum of its transfers. Then the boards are rebuilt from the ledger.

Idempotent: residents are numbered (city-<n>@demo.carbon.city); a second run adds only
the ones missing up to --size.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from carbon.leaderboards.engine import boards_rebuild
from carbon.models import (
    Account,
    AccountKind,
    Community,
    District,
    Lot,
    Transfer,
    TransferCode,
    TransferFlag,
    User,
)
from carbon.services.ledger import system_account

EMAIL = "city-{n}@demo.carbon.city"
DAYS = 90
# name, category, grams per act (min, max), acts a week for the keenest resident
HABITS = [
    ("Metro ride", "green_travel", 300, 1600, 3),
    ("Bus ride", "green_travel", 150, 600, 2),
    ("Walking", "green_travel", 50, 250, 2),
    ("Own bag", "consumption", 5, 25, 1),
    ("Recycling", "waste", 300, 3000, 0.5),
]
EXTRA_COMMUNITIES = {
    "jiangan": ["Erqi 二七街", "Taipingyang 台北街", "Houhu 后湖街"],
    "jianghan": ["Hanxing 汉兴街", "Qianjin 前进街", "Wansong 万松街"],
    "wuchang": ["Shuiguohu 水果湖街", "Ziyang 紫阳街", "Huangheou 黄鹤楼街"],
    "hongshan": ["Luonan 珞南街", "Zhangjiawan 张家湾街", "Qingling 青菱街"],
}


@contextmanager
def _explicit_created_at():
    """bulk_create would stamp `now` on auto_now_add fields; history needs its own times."""
    field = Transfer._meta.get_field("created_at")
    field.auto_now_add = False
    try:
        yield
    finally:
        field.auto_now_add = True


def _communities() -> list[Community]:
    for district in District.objects.all():
        for i, name in enumerate(EXTRA_COMMUNITIES.get(district.code, [])):
            Community.objects.get_or_create(
                code=f"{district.code}-{i + 1}", defaults={"name": name, "district": district}
            )
    return list(Community.objects.select_related("district").order_by("pk"))


def city_seed(*, size: int, password: str, progress: Callable[[int, int], None]) -> int:
    """Grow the demo city to `size` residents; returns how many were added."""
    existing = User.objects.filter(email__endswith="@demo.carbon.city", email__startswith="city-")
    have = existing.count()
    if have >= size:
        return 0
    communities = _communities()
    rng = random.Random(20261203 + have)
    hashed = make_password(password)
    now = timezone.now()
    shards = [
        system_account(kind=AccountKind.ISSUANCE, shard=s)
        for s in range(max(1, settings.LEDGER_SYSTEM_SHARDS))
    ]
    # A few busy communities and many quiet ones, as in a real city.
    weights = [1 + 4 * rng.random() ** 2 for _ in communities]
    added = 0
    batch = 500
    for start in range(have, size, batch):
        numbers = range(start, min(size, start + batch))
        with transaction.atomic(), _explicit_created_at():
            users = []
            for n in numbers:
                community = rng.choices(communities, weights)[0]
                users.append(
                    User(
                        email=EMAIL.format(n=n),
                        display_name=f"居民{n:05d}" if n % 3 else f"Resident {n}",
                        role=User.Role.RESIDENT,
                        community=community,
                        district=community.district,
                        password=hashed,
                        date_joined=now - timedelta(days=DAYS + rng.randint(0, 200)),
                    )
                )
            users = User.objects.bulk_create(users)
            accounts = Account.objects.bulk_create(
                [Account(kind=AccountKind.RESIDENT, user=u) for u in users]
            )
            transfers, credited, debited = [], defaultdict(int), defaultdict(int)
            for user, account in zip(users, accounts, strict=True):
                keenness = rng.random() ** 1.5  # most residents a little, a few a lot
                for h, (name, category, low, high, per_week) in enumerate(HABITS):
                    acts = int(per_week * keenness * DAYS / 7 * rng.uniform(0.5, 1.2))
                    for i in range(acts):
                        grams = rng.randint(low, high)
                        at = now - timedelta(seconds=rng.randint(600, DAYS * 86400))
                        shard = rng.choice(shards)
                        transfers.append(
                            Transfer(
                                idempotency_key=f"demo-city:{user.email}:{h}:{i}",
                                payload_hash="demo-city",
                                debit_account_id=shard.pk,
                                credit_account=account,
                                amount_g=grams,
                                flag=TransferFlag.POSTED,
                                code=TransferCode.AWARD,
                                category=category,
                                description=f"{name} (demo history)",
                                created_at=at,
                            )
                        )
                        credited[account.pk] += grams
                        debited[shard.pk] += grams
            transfers = Transfer.objects.bulk_create(transfers, batch_size=2000)
            Lot.objects.bulk_create(
                [
                    Lot(
                        account_id=t.credit_account_id,
                        award=t,
                        category=t.category,
                        amount_g=t.amount_g,
                        remaining_g=t.amount_g,
                        expires_at=t.created_at + timedelta(days=365),
                    )
                    for t in transfers
                ],
                batch_size=2000,
            )
            for account_id, grams in credited.items():
                Account.objects.filter(pk=account_id).update(
                    credits_posted=F("credits_posted") + grams,
                    lifetime_g=F("lifetime_g") + grams,
                )
            for account_id, grams in debited.items():
                Account.objects.filter(pk=account_id).update(
                    debits_posted=F("debits_posted") + grams
                )
        added += len(users)
        progress(start + len(users) - have, size - have)
    boards_rebuild()
    return added
