"""The admin's permissions, through its own URLs: staff without model permissions are
refused on every page and every action that writes, and nothing changes; a reviewer (the
demo's reviewer group) decides claims in the claim queue and the photo queue but cannot
reverse an award; and no registered admin's `has_*_permission` grants more than the model
permission it stands for."""

from __future__ import annotations

import inspect
import io
import re
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from carbon.adapters.partner_events.feed import partner_events_ingest
from carbon.adapters.partner_events.links import partner_link_create
from carbon.adapters.photo.models import ClaimPhoto
from carbon.adapters.transit.cards import card_hash, transit_card_link
from carbon.adapters.transit.feed import transit_taps_ingest
from carbon.models import (
    Appeal,
    AppealStatus,
    Claim,
    ClaimStatus,
    Partner,
    PartnerCredential,
    PenaltyBox,
    Transfer,
    TransferCode,
    User,
)
from carbon.services.appeals import appeal_report_missed
from carbon.services.claims import claim_submit
from carbon.services.ledger import ledger_hold
from carbon.services.linking import link_confirm_by_partner
from rewards.topups.services import topup_request
from tests.carbon.api_helpers import client_for, new_key
from tests.carbon.factories import UserFactory
from tests.carbon.photo_samples import encode, picture, upload
from tests.rewards.offsets.flows import offsets_admin_rows
from tests.rewards.payments.flows import payments_admin_rows

pytestmark = pytest.mark.django_db

REASON = {"apply": "1", "note": "Checked against the operator's log."}
CARD = "6227 0012 3456 7890"


@pytest.fixture
def world(db, stripe_server):
    """The demo, plus at least one row of every model the admin shows (each made by its
    service, as in real life), so that every page and action is tried on something real."""
    call_command("seed_demo", stdout=io.StringIO())
    alice, bo, chen = (
        User.objects.get(email=f"{name}@demo.carbon.city") for name in ("alice", "bo", "chen")
    )
    # Mortgage-interest offsets (rewards): a loan link, an offset and its day's batch. First:
    # its award is then not the newest, which a test below reverses whole.
    offsets_admin_rows(alice)
    # Stripe payments (rewards), over the local Stripe server: a sponsorship and a pool sale
    # paid and confirmed by webhook, a refund, a merchant's payout account and settlement.
    # Early too: its residents' awards are spent on vouchers and could not be reversed whole.
    payments_admin_rows(stripe_server)
    now = timezone.now()
    # A trip the card feed missed: an appeal, and its claim in the review queue.
    appeal, _ = appeal_report_missed(
        user=bo,
        behaviour_code="metro",
        quantity=3,
        occurred_at=now - timedelta(hours=3),
        reason="My card trip never came.",
        idempotency_key=new_key(),
    )
    # A self-declared ride an operator sends to review.
    doubtful, _ = claim_submit(
        user=chen,
        behaviour_code="metro",
        quantity=40,
        idempotency_key=new_key(),
        force_review="Forty kilometres in one ride?",
    )
    # Photos without a capture time wait for a reviewer.
    photos = []
    for seed in (31, 47):
        answer = upload(client_for(alice), encode(picture(seed), "JPEG"))
        assert answer.status_code == 201 and answer.json()["status"] == "needs_review"
        photos.append(ClaimPhoto.objects.get(claim_id=answer.json()["id"]))
    # A linked card and one metro trip from the operator's tap feed.
    link_confirm_by_partner(link=transit_card_link(user=alice, card_number=CARD, consent=True).card)
    start = now - timedelta(hours=2)
    transit_taps_ingest(
        partner=Partner.objects.get(name="Wuhan Metro"),
        rows=[
            {
                "record_id": f"rec-{i}",
                "card_hash": card_hash(CARD),
                "station": station,
                "mode": "metro",
                "direction": direction,
                "at": (start + timedelta(minutes=18 * i)).isoformat(),
            }
            for i, (station, direction) in enumerate(
                [("m-jiedaokou", "in"), ("m-wuchang-railway-station", "out")]
            )
        ],
    )
    # A partner link and one event from the partner's feed.
    grocer = Partner.objects.get(name="Green Grocer")
    link_confirm_by_partner(
        link=partner_link_create(
            user=chen, partner=grocer, external_ref="chen-1", consent=True
        ).link
    )
    fed = partner_events_ingest(
        partner=grocer,
        events=[
            {
                "event_id": "e-1",
                "behaviour": "e-receipt",
                "user_ref": "chen-1",
                "occurred_at": (now - timedelta(hours=1)).isoformat(),
                "receipts": 1,
            }
        ],
    )
    assert fed.as_dict()["accepted"] == 1, fed.as_dict()["rows"]
    PenaltyBox.objects.update_or_create(
        user=bo, defaults={"level": 1, "until": now + timedelta(hours=1), "last_triggered_at": now}
    )
    RefreshToken.for_user(alice).blacklist()
    # django-axes' records of failed logins and lockouts (its admin pages are registered).
    seen = {"username": bo.email, "ip_address": "127.0.0.1", "user_agent": "test"}
    AccessAttempt.objects.create(**seen, failures_since_start=1, get_data="", post_data="")
    AccessLog.objects.create(**seen)
    AccessFailureLog.objects.create(**seen, locked_out=False)
    # A transit top-up waiting to be sent (rewards/topups): alice's linked card, her points
    # held as a redemption would. Nothing is sent: this test's transaction never commits.
    metro = Partner.objects.get(name="Wuhan Metro")
    metro.endpoint_url = "http://127.0.0.1:9"
    metro.save(update_fields=["endpoint_url"])
    topup_request(
        user=alice,
        hold=ledger_hold(user=alice, amount_g=100, idempotency_key=new_key(), description="t"),
        operator=metro,
        amount_cny=Decimal("5.00"),
        card_number=CARD,
        reference="V-WORLD",
    )

    empty = [m._meta.label for m in admin.site._registry if not m._default_manager.exists()]
    assert not empty, f"give this fixture a row of {empty}"
    return SimpleNamespace(appeal=appeal, doubtful=doubtful, photos=photos)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def database_state() -> dict[str, list[dict]]:
    """Every row of every model but sessions (a login writes one)."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in apps.get_models()
        if model is not Session
    }


def named_urls(model_admin, pk) -> list[str]:
    """Every named URL the admin serves for its model (changelist, add, change, delete,
    history, and its own: the photo files, a user's password), on one real row."""
    urls = []
    for pattern in model_admin.get_urls():
        if isinstance(pattern, URLPattern) and pattern.name:
            params = {name: pk for name in pattern.pattern.converters}
            urls.append(reverse(f"admin:{pattern.name}", kwargs=params))
    return urls


def superuser_request():
    """To list an admin's actions as a superuser sees them (Django's delete_selected too)."""
    request = RequestFactory().get("/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    return request


def act(client: Client, model, action: str, rows, **extra):
    meta = model._meta
    return client.post(
        reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [row.pk for row in rows], **extra},
    )


# --- staff without permissions ---------------------------------------------------------


def test_staff_without_permissions_are_refused_on_every_admin_page_and_action(world):
    client = logged_in(UserFactory(is_staff=True))
    before = database_state()
    tried = set()

    for model, model_admin in admin.site._registry.items():
        rows = list(model._default_manager.all()[:3])
        for url in named_urls(model_admin, rows[0].pk):
            assert client.get(url).status_code == 403, url
            assert client.post(url, {"post": "yes", **REASON}).status_code == 403, url
            assert database_state() == before, url
        for action in model_admin.get_actions(superuser_request()):
            # As the changelist posts it, and as the reason page posts it back.
            for extra in ({"index": "0"}, {"post": "yes", **REASON}):
                answer = act(client, model, action, rows, **extra)
                assert answer.status_code == 403, (model._meta.label, action)
                assert database_state() == before, (model._meta.label, action)
            tried.add(action)

    # The decisions this test is about were among the actions tried.
    assert {"approve", "reject", "reverse", "rotate_key", "delete_selected"} <= tried


def test_every_action_needs_the_permission_it_names_even_from_staff_who_see_the_list(world):
    """Staff holding every other permission see the list but not the action; a POST of it
    runs nothing, and the action itself refuses a request that reaches it another way."""
    users: dict = {}
    clients: dict = {}
    cases = []
    for model, model_admin in admin.site._registry.items():
        for name, (func, _, _) in model_admin.get_actions(superuser_request()).items():
            needs = getattr(func, "allowed_permissions", ())
            assert needs, f"{model._meta.label}: the action {name} names no permission"
            user = staff_lacking(set().union(*(lacking(p, model) for p in needs)), users)
            if user.pk not in clients:
                clients[user.pk] = logged_in(user)  # a login writes last_login: before the snapshot
            cases.append((model, model_admin, name, func, user, clients[user.pk]))
    before = database_state()

    for model, model_admin, name, func, user, client in cases:
        meta = model._meta
        listing = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert listing.status_code == 200, (meta.label, name)
        assert f'value="{name}"'.encode() not in listing.content, (meta.label, name)
        rows = list(model._default_manager.all()[:3])
        for extra in ({"index": "0"}, {"post": "yes", **REASON}):
            act(client, model, name, rows, **extra)
            assert database_state() == before, (meta.label, name)
        if name != "delete_selected":  # Django's own, which checks as it deletes
            request = RequestFactory().post("/", {"action": name, **REASON})
            request.user = user
            request._messages = CookieStorage(request)
            with pytest.raises(PermissionDenied):
                func(model_admin, request, model._default_manager.all())
            assert database_state() == before, (meta.label, name)
    tried = {name for _, _, name, *_ in cases}
    assert {"approve", "reject", "reverse", "rotate_key", "delete_selected"} <= tried


# --- the reviewer ----------------------------------------------------------------------


@pytest.fixture
def reviewer(world):
    """The demo's reviewer: staff, in the reviewer group, nothing else."""
    user = User.objects.get(email="reviewer@demo.carbon.city")
    assert user.is_staff and not user.is_superuser and not user.user_permissions.exists()
    assert [g.name for g in user.groups.all()] == ["reviewer"]
    return user


def test_a_reviewer_decides_claims_in_the_queue_through_the_rules_and_ledger(
    world, reviewer, ledger_is_consistent
):
    client = logged_in(reviewer)
    queue = client.get(reverse("admin:carbon_claim_changelist"), {"queue": "open"})
    assert queue.status_code == 200 and b'value="approve"' in queue.content
    claim = world.appeal.claim

    asks = act(client, Claim, "approve", [claim])
    assert asks.status_code == 200 and b"reason" in asks.content
    done = act(client, Claim, "approve", [claim], **REASON)

    assert done.status_code == 302
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.CREDITED and claim.reviewed_by == reviewer
    # 3 km at 78.4 g/km = 235 g, at the self-declared weight (50%).
    assert claim.credited_g == 117 and claim.award.amount_g == 117
    assert Appeal.objects.get(pk=world.appeal.pk).status == AppealStatus.APPROVED

    rejected = act(client, Claim, "reject", [world.doubtful], **REASON)
    assert rejected.status_code == 302
    world.doubtful.refresh_from_db()
    assert world.doubtful.status == ClaimStatus.REJECTED and world.doubtful.award is None
    ledger_is_consistent()


def test_a_reviewer_decides_in_the_photo_queue(world, reviewer, ledger_is_consistent):
    client = logged_in(reviewer)
    approved, rejected = world.photos
    awards = Transfer.objects.filter(code=TransferCode.AWARD).count()

    assert client.get(reverse("admin:carbon_claimphoto_changelist")).status_code == 200
    assert act(client, ClaimPhoto, "approve", [approved], **REASON).status_code == 302
    assert act(client, ClaimPhoto, "reject", [rejected], **REASON).status_code == 302

    credited = Claim.objects.get(pk=approved.claim_id)
    # 2 uses at 5 g at the photo weight (80%) = 8 g, less what the demo's self-declared bag
    # of the same resident already earned for the act (the exclusive-evidence rule; the new
    # account's self-declaration budget may have left that claim nothing).
    earlier = sum(
        Claim.objects.filter(
            user=credited.user, behaviour=credited.behaviour, evidence_type="self"
        ).values_list("credited_g", flat=True)
    )
    assert credited.status == ClaimStatus.CREDITED and credited.award.amount_g == 8 - earlier
    assert Claim.objects.get(pk=rejected.claim_id).status == ClaimStatus.REJECTED
    assert Transfer.objects.filter(code=TransferCode.AWARD).count() == awards + 1
    ledger_is_consistent()


def test_a_reviewer_cannot_reverse_an_award_and_an_administrator_with_the_permission_can(
    world, reviewer, ledger_is_consistent
):
    award = Transfer.objects.filter(code=TransferCode.AWARD).first()
    transfers = Transfer.objects.count()
    client = logged_in(reviewer)

    listing = client.get(reverse("admin:carbon_transfer_changelist"))
    assert listing.status_code == 200 and b'value="reverse"' not in listing.content
    refused = act(client, Transfer, "reverse", [award], **REASON)
    assert refused.status_code == 200  # the list again: no action of theirs has that name
    assert Transfer.objects.count() == transfers

    administrator = UserFactory(is_staff=True)
    administrator.groups.add(*reviewer.groups.all())
    administrator.user_permissions.add(
        Permission.objects.get(content_type__app_label="carbon", codename="reverse_transfer")
    )
    done = act(logged_in(administrator), Transfer, "reverse", [award], **REASON)

    assert done.status_code == 302
    reversal = Transfer.objects.get(reverses=award)
    assert reversal.code == TransferCode.REVERSAL and reversal.amount_g == award.amount_g
    ledger_is_consistent()


def test_a_reviewer_cannot_rotate_partner_keys_or_edit_anything(world, reviewer):
    client = logged_in(reviewer)
    partner = Partner.objects.get(name="Green Grocer")
    keys = list(PartnerCredential.objects.values_list("key_id", "revoked_at"))

    assert act(client, Partner, "rotate_key", [partner], index="0").status_code == 403
    assert list(PartnerCredential.objects.values_list("key_id", "revoked_at")) == keys
    claim = world.doubtful
    page = client.get(reverse("admin:carbon_claim_change", args=[claim.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content  # view only
    assert client.post(reverse("admin:carbon_claim_change", args=[claim.pk]), {}).status_code == 403


# --- no override grants more than its model permission --------------------------------

HAS_PERMISSION = re.compile(r"has_(\w+)_permission")


def lacking(kind: str, model) -> set[str]:
    """The permissions whose absence must make `has_<kind>_permission` answer False."""
    opts = model._meta
    own = f"{opts.app_label}.%s_{opts.model_name}"
    match kind:
        case "view" | "view_or_change":  # Django lets change imply view
            return {own % "view", own % "change"}
        case "add" | "change" | "delete":
            return {own % kind}
        case "module":
            return {
                f"{opts.app_label}.{codename}"
                for codename in Permission.objects.filter(
                    content_type__app_label=opts.app_label
                ).values_list("codename", flat=True)
            }
        case "review":
            return {"carbon.review_claim"}
        case "reverse":
            return {"carbon.reverse_transfer"}
        # rewards (tests/rewards/test_admin.py tries each decision through the admin)
        case "adjust_stock":
            return {"rewards.adjust_stock"}
        case "redeem_for_merchant":
            return {"rewards.redeem_for_merchant"}
        case "settle":
            return {"rewards.settle_redemptions"}
        case "refund" if opts.label == "rewards.TopUp":
            return {"rewards.refund_topup"}
        # rewards' Stripe payments (tests/rewards/payments/test_payments_admin.py)
        case "refund" if opts.label == "rewards.Payment":
            return {"rewards.refund_payment"}
        case "run_settlement":
            return {"rewards.run_settlement"}
        case "void_offset":
            return {"rewards.void_offset"}
        case "record_verdict":
            return {"biodiversity.record_verdict"}
        case "moderate_flag":
            return {"biodiversity.moderate_flag"}
        # zerowaste (tests/zerowaste/test_lifecycle_admin.py tries each decision)
        case "review_cell" | "certify_cell" | "sanction_cell":
            return {f"zerowaste.{kind}"}
        case "review_votes" | "publish_results":
            return {f"zerowaste.{kind}"}
    pytest.fail(
        f"{model._meta.label}: has_{kind}_permission is unknown to this test; say here which "
        "model permission it stands for"
    )


def staff_lacking(perms: set[str], cache: dict) -> User:
    """A staff user with every permission but `perms`, fresh from the database."""
    key = frozenset(perms)
    if key not in cache:
        user = UserFactory(is_staff=True)
        user.user_permissions.set(
            p
            for p in Permission.objects.select_related("content_type")
            if f"{p.content_type.app_label}.{p.codename}" not in perms
        )
        cache[key] = user.pk
    return User.objects.get(pk=cache[key])


def admins_and_inlines():
    for model, model_admin in admin.site._registry.items():
        yield model_admin, model, model
        for inline in model_admin.inlines:
            yield inline(model, admin.site), inline.model, model


def test_no_admin_grants_more_than_the_model_permission_it_stands_for(world):
    users: dict = {}
    checked = 0
    for model_admin, model, parent in admins_and_inlines():
        # An inline's `obj` is the parent row; a model admin's is its own row.
        obj = parent._default_manager.first()
        for name in dir(model_admin):
            match = HAS_PERMISSION.fullmatch(name)
            if not match:
                continue
            method = getattr(model_admin, name)
            request = RequestFactory().get("/")
            request.user = staff_lacking(lacking(match[1], model), users)
            if "obj" in inspect.signature(method).parameters:
                calls = [(request, None), (request, obj)]
            else:
                calls = [(request,)]
            for args in calls:
                assert not method(*args), (type(model_admin).__name__, name, args[1:])
                checked += 1
    assert checked > 100
