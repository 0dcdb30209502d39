"""Demo data of the money slices for `manage.py seed_demo`: Green Grocer as a sponsor (its
manager from the rewards demo pays), GreenRide NEV as an enterprise buyer with a manager login,
and a pool run by "Wuhan Carbon Pool" holding 5 tonnes the programme pooled. Idempotent; it
calls no Stripe (so `payments_reconcile` passes on a fresh demo with or without a server)."""

from __future__ import annotations

from django.db import transaction

from carbon.models import AccountKind, Partner, User
from carbon.services.ledger import enterprise_account, ledger_move, system_account
from carbon.services.partners import partner_create
from rewards.merchants.models import MerchantStaff
from rewards.pool.models import GRAMS_PER_TONNE, EnterpriseBuyer, Pool
from rewards.sponsorships.models import Sponsor

BUYER_EMAIL = "buyer@demo.carbon.city"
BUYER_PASSWORD = "demo-buyer-2026"
POOL_KEEPER = "Wuhan Carbon Pool"
POOL_NAME = "Wuhan residents' pooled reductions"


@transaction.atomic
def money_demo_seed(*, stdout) -> None:
    grocer = Partner.objects.filter(name="Green Grocer").first()
    if grocer is not None and not Sponsor.objects.filter(partner=grocer).exists():
        Sponsor.objects.create(partner=grocer)
        stdout.write("sponsor: Green Grocer (its manager funds the budget)")
    nev = Partner.objects.filter(name="GreenRide NEV").first()
    if nev is not None:
        buyer, created = EnterpriseBuyer.objects.get_or_create(partner=nev)
        if not User.objects.filter(email=BUYER_EMAIL).exists():
            # Partner staff are MerchantStaff profiles whatever the partner's kind.
            user = User.objects.create_user(
                email=BUYER_EMAIL,
                password=BUYER_PASSWORD,
                role=User.Role.MERCHANT_STAFF,
                partner=nev,
            )
            MerchantStaff.objects.create(user=user, merchant=nev, is_manager=True)
            stdout.write(f"enterprise buyer GreenRide NEV: {BUYER_EMAIL} / {BUYER_PASSWORD}")
    keeper = Partner.objects.filter(name=POOL_KEEPER).first()
    if keeper is None:
        keeper = partner_create(name=POOL_KEEPER, kind=Partner.Kind.PLATFORM).partner
    pool, created = Pool.objects.get_or_create(
        name=POOL_NAME, defaults={"keeper": keeper, "price_fen_per_tonne": 60_00}
    )
    # The programme pools 5 tonnes from issuance (residents' donations add to it).
    ledger_move(
        from_account=system_account(kind=AccountKind.ISSUANCE, shard=0),
        to_account=enterprise_account(partner=keeper),
        amount_g=5 * GRAMS_PER_TONNE,
        idempotency_key="demo:pool:programme-pooled",
        description="Reductions pooled by the programme (demo)",
    )
    if created:
        stdout.write(f"pool {POOL_NAME!r}: 5 t at 60 CNY per tonne")
