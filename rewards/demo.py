"""Demo data of rewards, run by `manage.py seed_demo` after the core's (registered from
RewardsConfig.ready()): offers of every kind, some within the demo residents' few hundred
grams, a merchant manager's login at Green Grocer, and a voucher or two in each state a
till sees. Idempotent: fixed titles and idempotency keys make a second run a no-op."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from carbon.models import Partner, User
from rewards.merchants.models import MerchantRedemption, MerchantStaff
from rewards.merchants.redemptions import merchant_redeem
from rewards.merchants.staff import staff_invitation_accept, staff_invite
from rewards.offers.models import Offer, OfferKind
from rewards.vouchers.services import voucher_issue

STAFF_EMAIL = "staff@greengrocer.demo.carbon.city"
STAFF_PASSWORD = "till-demo-2026"
NAMESPACE = uuid.UUID("0d7f3c55-92b1-4f7e-8d0e-6f2f0a9b1c44")

# kind, partner, title zh / en, price g, stock, per day / month / lifetime, CNY owed, extra
OFFERS = [
    (
        OfferKind.VOUCHER,
        "Green Grocer",
        ("绿色菜篮 5 元代金券", "Green Grocer 5 CNY voucher"),
        150,
        200,
        (1, 5, None),
        "5.00",
        {
            "terms_zh": "单笔满 30 元可用，不找零。",
            "terms_en": "On a basket of 30 CNY or more; no change given.",
        },
    ),
    (
        OfferKind.VOUCHER,
        "Green Grocer",
        ("竹制餐具套装", "Bamboo tableware set"),
        5000,
        20,
        (None, None, 1),
        "45.00",
        {"refund_on_expiry": False},
    ),
    (
        OfferKind.TRANSIT_TOPUP,
        "Wuhan Metro",
        ("武汉通充值 2 元", "Wuhan Tong card top-up 2 CNY"),
        120,
        1000,
        (1, 10, None),
        "2.00",
        {},
    ),
    (
        OfferKind.TICKET,
        "East Lake Greenway",
        ("东湖绿道观光车票", "East Lake Greenway shuttle ticket"),
        200,
        50,
        (None, 2, None),
        "10.00",
        {"voucher_lifetime": timedelta(days=60)},
    ),
    (
        OfferKind.DONATION,
        "Wuhan Green Fund",
        ("守护长江江豚", "Protect the Yangtze finless porpoise"),
        50,
        10000,
        (None, None, None),
        "0.50",
        {"donation_project": "长江江豚栖息地保护 · Yangtze finless porpoise habitat"},
    ),
]
# Partners the core's demo does not have (it has Green Grocer and Wuhan Metro).
EXTRA_PARTNERS = [
    ("East Lake Greenway", Partner.Kind.MERCHANT),
    ("Wuhan Green Fund", Partner.Kind.PLATFORM),
]


def _offers() -> dict[str, Offer]:
    for name, kind in EXTRA_PARTNERS:
        Partner.objects.get_or_create(name=name, defaults={"kind": kind})
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    offers = {}
    for kind, partner, (zh, en), price, stock, (day, month, life), value, extra in OFFERS:
        offer = Offer.objects.filter(title_en=en).first()
        if offer is None:
            offer = Offer.objects.create(
                kind=kind,
                partner=Partner.objects.get(name=partner),
                title_zh=zh,
                title_en=en,
                price_g=price,
                stock_total=stock,
                stock_left=stock,
                limit_per_day=day,
                limit_per_month=month,
                limit_lifetime=life,
                partner_value_cny=Decimal(value),
                valid_from=start,
                **extra,
            )
        offers[en] = offer
    return offers


def _staff(stdout) -> User:
    staff = User.objects.filter(email=STAFF_EMAIL).first()
    if staff is None:
        invitation = staff_invite(
            merchant=Partner.objects.get(name="Green Grocer"), email=STAFF_EMAIL, manager=True
        )
        staff = staff_invitation_accept(token=invitation.token, password=STAFF_PASSWORD)
        stdout.write(f"merchant staff {STAFF_EMAIL} / {STAFF_PASSWORD} (manager, Green Grocer)")
    return staff


def rewards_demo_seed(*, stdout) -> None:
    with transaction.atomic():
        offers = _offers()
        staff = _staff(stdout)
    grocer = MerchantStaff.objects.get(user=staff).merchant
    voucher_offer = offers["Green Grocer 5 CNY voucher"]
    # Bo's voucher was used at the till, Alice's waits to be; Chen gave to the porpoises.
    for email, offer, redeem in (
        ("bo@demo.carbon.city", voucher_offer, True),
        ("alice@demo.carbon.city", voucher_offer, False),
        ("chen@demo.carbon.city", offers["Protect the Yangtze finless porpoise"], False),
    ):
        resident = User.objects.filter(email=email).first()
        if resident is None:
            continue
        key = str(uuid.uuid5(NAMESPACE, f"{email}:{offer.title_en}"))
        voucher, _ = voucher_issue(user=resident, offer_id=offer.pk, idempotency_key=key)
        if redeem and not MerchantRedemption.objects.filter(voucher=voucher).exists():
            merchant_redeem(staff=staff, merchant=grocer, code=voucher.code)
