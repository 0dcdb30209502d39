"""Personal data as a registry: every model that holds a person's data has a provider, the
export holds every provider's section, and erasure leaves nothing of the person in any of
them while the ledger stays whole."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from axes.models import AccessAttempt, AccessLog
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import models
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from carbon import personal_data
from carbon.adapters.partner_events.matching import external_ref_hash
from carbon.adapters.partner_events.models import PartnerEvent, PartnerLink
from carbon.adapters.photo.models import ClaimPhoto, PhotoHashBand
from carbon.adapters.transit.cards import card_hash
from carbon.adapters.transit.feed import transit_taps_ingest
from carbon.adapters.transit.models import Station, Tap, TransitCard, Trip, TripStatus
from carbon.adapters.transit.network import forget_network
from carbon.adapters.transit.trips import transit_taps_settle, transit_trips_expire
from carbon.models import (
    Appeal,
    Behaviour,
    Claim,
    Community,
    Consent,
    LotAllocation,
    Partner,
    PenaltyBox,
    Transfer,
    User,
)
from carbon.personal_data import DuplicateProvider, PersonalData
from carbon.services.claims import claim_review
from carbon.services.partners import partner_create
from carbon.services.people import user_erase, user_export
from tests.carbon.api_helpers import (
    PASSWORD,
    bearer,
    claim_payload,
    new_key,
    obtain_tokens,
    partner_post,
)
from tests.carbon.factories import BehaviourFactory, EmissionFactorFactory, UserFactory
from tests.carbon.photo_samples import photo_bytes, upload
from tests.carbon.transit_samples import operator_confirms

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"
CARD = "6227 0012 3456 7890"
OTHER_CARD = "6227 0098 7654 3210"
REF, OTHER_REF = "qj-lin-meizhen", "qj-someone-else"


# --- every model that holds a person's data has a provider ----------------------------------


def _label(model: type[models.Model]) -> str:
    return model._meta.label


def personal_models() -> dict[type[models.Model], str]:
    """Every installed model whose rows hold a person's data, with how it reaches the user
    model: a relation to it, or to a model already found (followed transitively)."""
    user_model = get_user_model()
    found: dict[type[models.Model], str] = {user_model: "is the user model"}
    candidates = {m._meta.concrete_model for m in apps.get_models(include_auto_created=False)}
    changed = True
    while changed:
        changed = False
        for model in candidates - set(found):
            for field in (*model._meta.fields, *model._meta.many_to_many):
                target = field.related_model if field.is_relation else None
                target = target._meta.concrete_model if target is not None else None
                if target in found:
                    via = "" if target is user_model else f", which {found[target]}"
                    found[model] = f"refers to {_label(target)} by `{field.name}`{via}"
                    changed = True
                    break
    return found


def unnamed(providers) -> list[str]:
    named = {m._meta.concrete_model for p in providers for m in p.models}
    return sorted(
        f"{_label(model)} {how}, but no personal-data provider names it. Register a "
        "carbon.personal_data.PersonalData whose `models` include it (with an exporter and "
        "an eraser) from your app's AppConfig.ready(); see docs/adapters.md, 'Personal data'."
        for model, how in personal_models().items()
        if model not in named
    )


def test_every_model_that_refers_to_a_person_has_a_personal_data_provider():
    missing = unnamed(personal_data.providers())
    assert not missing, "\n".join(missing)


def test_the_walk_follows_relations_through_resident_owned_rows():
    found = personal_models()
    # Directly, through one row, and through two.
    for model in (User, Claim, TransitCard, OutstandingToken, LogEntry):
        assert model in found
    for model in (Trip, ClaimPhoto, PartnerEvent, Transfer, BlacklistedToken):
        assert model in found
    for model in (Tap, PhotoHashBand, LotAllocation):
        assert model in found
    assert "Trip" in found[Tap] and "Claim" in found[Tap]
    # Reference data that people point at is not theirs.
    for model in (Station, Behaviour, Partner, Community, ContentType):
        assert model not in found


def test_a_model_no_provider_names_fails_the_check_with_what_to_do():
    without_trips = [p for p in personal_data.providers() if p.key != "transit_trips"]

    missing = unnamed(without_trips)

    assert [m.split(" ", 1)[0] for m in missing] == ["carbon.Tap", "carbon.Trip"]
    assert "Register a carbon.personal_data.PersonalData" in missing[0]
    assert "carbon.Trip" in missing[0] and "carbon.Claim" in missing[1]


# --- the registry ---------------------------------------------------------------------------


def test_a_duplicate_or_reserved_key_is_refused_and_the_registry_is_unchanged():
    before = personal_data.providers()
    claims = next(p for p in before if p.key == "claims")

    with pytest.raises(DuplicateProvider):
        personal_data.register(PersonalData("claims", (Claim,), claims.export, claims.erase))
    with pytest.raises(ValueError):
        PersonalData("exported_at", (Claim,), claims.export, claims.erase)
    with pytest.raises(ValueError):
        PersonalData("nothing", (), claims.export, claims.erase)

    assert personal_data.providers() == before


@pytest.fixture
def registered():
    """Register providers for one test; they are removed afterwards."""
    keys: list[str] = []

    def register(provider: PersonalData) -> PersonalData:
        personal_data.register(provider)
        keys.append(provider.key)
        return provider

    yield register
    for key in keys:
        personal_data.unregister(key)


def test_a_provider_registered_at_runtime_is_exported_and_erased(resident, registered):
    calls = []

    def export(*, user):
        calls.append(("export", user.pk))
        return {"votes": 3}

    def erase(*, user):
        # Runs before the profile is anonymised, inside the erasure's transaction.
        calls.append(("erase", user.pk, user.email, user.erased_at))

    registered(PersonalData("zerowaste_votes", (Community,), export, erase))
    client = bearer(obtain_tokens(resident.email)["access"])
    email = resident.email

    exported = client.get(f"{ME}/export").json()
    assert client.delete(ME, {"password": PASSWORD}, format="json").status_code == 204

    assert exported["zerowaste_votes"] == {"votes": 3}
    assert list(exported)[-1] == "zerowaste_votes"
    assert calls == [("export", resident.pk), ("erase", resident.pk, email, None)]


def test_an_eraser_that_fails_leaves_everything_as_it_was(resident, registered, metro):
    client = bearer(obtain_tokens(resident.email)["access"])
    client.put(f"{ME}/consents/transit_card")

    def erase(*, user):
        raise RuntimeError("the votes table is down")

    registered(PersonalData("broken", (Community,), lambda *, user: None, erase))

    with pytest.raises(RuntimeError):
        user_erase(user=resident)

    resident.refresh_from_db()
    assert resident.erased_at is None and resident.is_active
    # The core's erasers ran before the broken one; their work was rolled back with it.
    assert Consent.objects.current().filter(user=resident).count() == 1
    assert not BlacklistedToken.objects.exists()


# --- a resident with data in every part -----------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_network():
    forget_network()
    yield
    forget_network()


@pytest.fixture
def operator(db):
    issued = partner_create(name="Wuhan Metro", kind="transit_operator")
    call_command("load_transit", demo=True, verbosity=0)
    return issued


@pytest.fixture
def bike_partner(db):
    behaviour = BehaviourFactory(
        code="bike-share",
        name="Shared bike ride",
        category="green_travel",
        unit="km",
        evidence_types=["partner"],
        consent_scope="bike_share",
        max_quantity=Decimal("50"),
    )
    EmissionFactorFactory(
        behaviour=behaviour,
        grams_per_unit=Decimal("93.3"),
        valid_from=timezone.now() - timedelta(days=30),
    )
    issued = partner_create(name="QingJu", kind="platform")
    issued.partner.behaviours.add(behaviour)
    return issued


_records = iter(range(1, 10**9))


def _tap(station: str, direction: str, at, number: str) -> dict:
    return {
        "record_id": f"rec-{next(_records)}",
        "card_hash": card_hash(number),
        "station": station,
        "mode": "metro",
        "direction": direction,
        "at": at.isoformat(),
    }


def _push_taps(operator, taps: list[dict], *, sent_at: int | None = None) -> dict:
    response = partner_post(
        "/api/v1/partners/transit/taps",
        key_id=operator.key_id,
        secret=operator.secret,
        payload={"taps": taps},
        timestamp=sent_at,
    )
    assert response.status_code == 200, response.content
    return response.json()


def _push_event(partner, event_id: str, ref: str) -> dict:
    row = {
        "event_id": event_id,
        "behaviour": "bike-share",
        "user_ref": ref,
        "occurred_at": (timezone.now() - timedelta(hours=3)).isoformat(),
        "distance_km": 2.5,
        "duration_s": 700,
    }
    response = partner_post(
        "/api/v1/partners/events",
        key_id=partner.key_id,
        secret=partner.secret,
        payload={"events": [row]},
    )
    assert response.status_code == 200, response.content
    return response.json()


def _resident_data(client, *, card: str, ref: str, operator, bike_partner, seed: int) -> dict:
    """Data in every part, made the way it is made in use. Returns the recent taps sent."""
    now = timezone.now()
    assert client.put(f"{ME}/consents/transit_card").status_code in (200, 201)
    cards = client.post(
        f"{ME}/transit-cards",
        {"card_number": card, "label": f"commute card {seed}", "consent": True},
        format="json",
    )
    assert cards.status_code == 202, cards.content
    # The operator confirms that its customer holding the card brought the link's token.
    confirmed = operator_confirms(operator, cards.json()["link_token"], number=card)
    assert confirmed.status_code == 200, confirmed.content
    # A ride (credited), and an entry still waiting for its exit.
    recent = [
        _tap("m-jiedaokou", "in", now - timedelta(hours=2), card),
        _tap("m-guangbutun", "out", now - timedelta(hours=2) + timedelta(minutes=6), card),
        _tap("m-jiedaokou", "in", now - timedelta(minutes=10), card),
    ]
    # Signed a little in the past, so that a resend signed later is not the same request.
    sent_at = int(now.timestamp()) - 10
    assert _push_taps(operator, recent, sent_at=sent_at)["accepted"] == 3
    # A ride 40 days ago, as the operator sent it then: too old to credit, it expired.
    then = now - timedelta(days=40)
    old = [
        _tap("m-guangbutun", "in", then - timedelta(hours=1), card),
        _tap("m-jiedaokou", "out", then - timedelta(hours=1) + timedelta(minutes=7), card),
    ]
    transit_taps_ingest(partner=operator.partner, rows=old, now=then)
    # A self-declared ride with a note, a photo, a missed-credit appeal a reviewer answered.
    note = client.post(
        "/api/v1/claims",
        claim_payload("metro", 3, evidence={"type": "self", "note": f"ride home, note {seed}"}),
        format="json",
    )
    assert note.status_code == 201, note.content
    photo = upload(client, photo_bytes(40 + seed))
    assert photo.status_code == 201, photo.content
    appeal = client.post(
        "/api/v1/appeals",
        {
            "behaviour": "metro",
            "quantity": "8.5",
            "occurred_at": (now - timedelta(days=1)).isoformat(),
            "reason": f"My trip from Jiedaokou was never credited, appeal {seed}",
            "idempotency_key": new_key(),
        },
        format="json",
    )
    assert appeal.status_code == 201, appeal.content
    claim_review(
        claim_id=Appeal.objects.get(pk=appeal.json()["id"]).claim_id,
        reviewer=UserFactory(is_staff=True, role="administrator"),
        approve=False,
        note=f"No such trip in the operator's log, review {seed}",
    )
    # A partner account and a ride it reported.
    asked = client.post(
        f"{ME}/partner-links",
        {"partner": bike_partner.partner.pk, "external_ref": ref, "consent": True},
        format="json",
    )
    assert asked.status_code == 202, asked.content
    linked = partner_post(
        "/api/v1/partners/links/confirm",
        key_id=bike_partner.key_id,
        secret=bike_partner.secret,
        payload={"link_token": asked.json()["link_token"], "user_ref": ref},
    )
    assert linked.status_code == 200, linked.content
    assert _push_event(bike_partner, f"ev-{seed}", ref)["accepted"] == 1
    return {"recent_taps": recent, "old_taps": old, "sent_at": sent_at}


@pytest.fixture
def everything(resident, other_resident, metro, own_bag, operator, bike_partner):
    """The resident and another, each with data in every part; staff touched the resident's
    account in the admin; the resident sits in the penalty box."""
    tokens = obtain_tokens(resident.email)
    client = bearer(tokens["access"])
    client.patch(ME, {"display_name": "Lin Meizhen"}, format="json")
    sent = _resident_data(
        client, card=CARD, ref=REF, operator=operator, bike_partner=bike_partner, seed=1
    )
    other = bearer(obtain_tokens(other_resident.email)["access"])
    _resident_data(
        other, card=OTHER_CARD, ref=OTHER_REF, operator=operator, bike_partner=bike_partner, seed=2
    )
    now = timezone.now()
    PenaltyBox.objects.create(user=resident, level=1, until=now, last_triggered_at=now)
    resident.refresh_from_db()
    LogEntry.objects.create(
        user=UserFactory(is_staff=True),
        content_type=ContentType.objects.get_for_model(User),
        object_id=str(resident.pk),
        object_repr=str(resident),
        action_flag=CHANGE,
        change_message='[{"changed": {"fields": ["Display name"]}}]',
    )
    return {"client": client, "tokens": tokens, **sent}


def test_the_export_holds_every_providers_section(everything, resident):
    response = everything["client"].get(f"{ME}/export")

    assert response.status_code == 200, response.content
    data = response.json()
    assert list(data) == ["exported_at", *(p.key for p in personal_data.providers())]
    for key in (
        "consents",
        "claims",
        "appeals",
        "ledger",
        "login_tokens",
        "photos",
        "transit_cards",
        "partner_events",
        "partner_links",
    ):
        assert data[key], key
    assert data["profile"]["display_name"] == "Lin Meizhen"
    assert data["penalty_box"]["level"] == 1
    assert data["admin_log"] == []  # a resident does nothing in the admin
    # Photos have their own section now, with the private EXIF facts and GPS.
    assert all("photo" not in claim for claim in data["claims"])
    (photo,) = data["photos"]
    assert photo["gps"] is not None and photo["exif"]["model"] == "Model 1"
    assert photo["url"] == f"/api/v1/claims/{photo['claim']}/photo"
    # The location history: the credited ride, the expired old one, the entry still waiting.
    trips = data["transit_trips"]["trips"]
    assert [(t["entry_station"], t["exit_station"]) for t in trips] == [
        ("m-guangbutun", "m-jiedaokou"),
        ("m-jiedaokou", "m-guangbutun"),
    ]
    assert [t["status"] for t in trips] == [TripStatus.EXPIRED, TripStatus.CLAIMED]
    assert [len(t["taps"]) for t in trips] == [2, 2]
    assert [t["station"] for t in data["transit_trips"]["unpaired_taps"]] == ["m-jiedaokou"]
    # Tokens are listed, never given out.
    assert everything["tokens"]["refresh"] not in response.content.decode()
    (event,) = data["partner_events"]
    assert event["event_id"] == "ev-1" and event["details"] and event["claim"]


def _dump_of_provider_models() -> str:
    return "\n".join(
        serializers.serialize("json", model._default_manager.all())
        for provider in personal_data.providers()
        for model in provider.models
    )


def test_erasure_leaves_nothing_of_the_person_and_a_consistent_ledger(
    everything,
    resident,
    other_resident,
    operator,
    settings,
    ledger_is_consistent,
    django_capture_on_commit_callbacks,
):
    personal = [
        resident.email,
        "Lin Meizhen",
        "commute card 1",
        card_hash(CARD),
        external_ref_hash(partner=Partner.objects.get(name="QingJu"), external_ref=REF),
        "note 1",
        "appeal 1",
        "review 1",
    ]
    before = _dump_of_provider_models()
    assert all(p in before for p in personal)
    photo = ClaimPhoto.objects.get(claim__user=resident)
    files = [photo.image.name, photo.thumbnail.name]
    others = {
        "card": TransitCard.objects.get(user=other_resident).card_hash,
        "trips": list(
            Trip.objects.filter(claim__user=other_resident).values_list(
                "entry_station", "exit_station", "card_hash"
            )
        ),
        "photo": ClaimPhoto.objects.get(claim__user=other_resident).pk,
        "link": PartnerLink.objects.get(user=other_resident).external_ref_hash,
        "event": PartnerEvent.objects.get(claim__user=other_resident).details,
    }
    transfers = set(
        Transfer.objects.values_list("pk", "amount_g", "debit_account", "credit_account")
    )
    taps_before = Tap.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = everything["client"].delete(ME, {"password": PASSWORD}, format="json")

    assert response.status_code == 204, response.content
    dump = _dump_of_provider_models()
    left = [p for p in personal if p in dump]
    assert not left, f"still stored after erasure: {left}"
    # Cards and partner accounts: forgotten.
    assert set(
        TransitCard.objects.filter(user=resident).values_list("label", "last_digits", "card_hash")
    ) == {("", "", "")}
    assert PartnerLink.objects.get(user=resident).unlinked_at is not None
    # Photos, their EXIF and GPS, their hash bands and files: gone.
    assert not ClaimPhoto.objects.filter(claim__user=resident).exists()
    assert not PhotoHashBand.objects.filter(photo__claim__user=resident).exists()
    assert not any(default_storage.exists(name) for name in files)
    # Appeals and claims keep no words of the resident or the reviewer.
    assert set(Appeal.objects.filter(user=resident).values_list("reason", "decision_note")) == {
        ("", "")
    }
    assert all(
        c.evidence == {} and c.review_note == "" for c in Claim.objects.filter(user=resident)
    )
    # Trips and taps: no card, no stations, no claim; what the feed could still resend stays
    # as bare records (for idempotency), the rest is deleted.
    assert not Trip.objects.filter(claim__user=resident).exists()
    assert not Trip.objects.filter(card_hash=card_hash(CARD)).exists()
    tombstones = Trip.objects.filter(card_hash="")
    assert tombstones.count() == 2  # the ride, and one for the entry that was waiting
    assert set(tombstones.values_list("entry_station", "exit_station", "claim", "status")) == {
        (None, None, None, TripStatus.EXPIRED)
    }
    recent_ids = [t["record_id"] for t in everything["recent_taps"]]
    assert set(
        Tap.objects.filter(record_id__in=recent_ids).values_list("card_hash", flat=True)
    ) == {""}
    assert not Tap.objects.filter(trip__isnull=True, card_hash="").exists()
    assert not Tap.objects.filter(
        record_id__in=[t["record_id"] for t in everything["old_taps"]]
    ).exists()
    assert Tap.objects.count() == taps_before - 2
    # The penalty box is gone; the admin log keeps what staff did, not who it was about.
    assert not PenaltyBox.objects.filter(user=resident).exists()
    assert LogEntry.objects.get().object_repr == "(erased)"
    # Tokens are blacklisted.
    assert not OutstandingToken.objects.filter(
        user=resident, blacklistedtoken__isnull=True
    ).exists()
    # The other resident keeps everything.
    assert TransitCard.objects.get(user=other_resident).card_hash == others["card"]
    assert (
        list(
            Trip.objects.filter(claim__user=other_resident).values_list(
                "entry_station", "exit_station", "card_hash"
            )
        )
        == others["trips"]
    )
    assert ClaimPhoto.objects.get(claim__user=other_resident).pk == others["photo"]
    assert PartnerLink.objects.get(user=other_resident).external_ref_hash == others["link"]
    assert PartnerEvent.objects.get(claim__user=other_resident).details == others["event"]
    # The ledger is untouched and consistent.
    assert (
        set(Transfer.objects.values_list("pk", "amount_g", "debit_account", "credit_account"))
        == transfers
    )
    ledger_is_consistent()


def test_after_erasure_the_operators_resent_taps_and_the_periodic_jobs_bring_nothing_back(
    everything, resident, other_resident, operator
):
    user_erase(user=resident)
    erased = Trip.objects.filter(card_hash="")
    tombstones = list(erased.values_list("pk", "status", "entry_station", "exit_station"))
    taps = Tap.objects.count()

    resent = _push_taps(operator, everything["recent_taps"], sent_at=everything["sent_at"] + 1)
    later = timezone.now() + timedelta(hours=6)
    settled = transit_taps_settle(now=later)
    transit_trips_expire(now=later + timedelta(days=30))
    too_old = _push_taps(operator, everything["old_taps"])

    assert resent["duplicates"] == 3 and resent["accepted"] == 0
    # Only the other resident's waiting entry was decided (a trip missing its exit).
    assert settled.created == 1 and [c.user for c in settled.claims] == [other_resident]
    assert list(erased.values_list("pk", "status", "entry_station", "exit_station")) == tombstones
    assert Tap.objects.count() == taps
    assert not Tap.objects.filter(card_hash=card_hash(CARD)).exists()
    assert not Trip.objects.filter(card_hash=card_hash(CARD)).exists()
    # The deleted old taps cannot come back: the feed refuses them before looking them up.
    assert [r["code"] for r in too_old["rows"]] == ["time_too_old", "time_too_old"]
    # A later holder of the card links it with the operator's confirmation: nothing of the
    # erased resident is credited to them.
    newcomer = UserFactory()
    client = bearer(obtain_tokens(newcomer.email)["access"])
    asked = client.post(
        f"{ME}/transit-cards", {"card_number": CARD, "consent": True}, format="json"
    )
    assert asked.status_code == 202, asked.content
    assert operator_confirms(operator, asked.json()["link_token"]).status_code == 200
    assert not Claim.objects.filter(user=newcomer).exists()


def test_erasing_twice_changes_nothing_more(everything, resident):
    user_erase(user=resident)
    resident.refresh_from_db()
    email, dump = resident.email, _dump_of_provider_models()

    user_erase(user=resident)

    resident.refresh_from_db()
    assert resident.email == email
    assert _dump_of_provider_models() == dump


def test_failed_logins_under_the_address_are_exported_and_erased(resident, other_resident):
    """django-axes records failed logins by address and IP, with no foreign key to the user:
    its provider finds them by address, in any letter case, and leaves others' alone."""
    seen = {"ip_address": "203.0.113.9", "user_agent": "phone"}
    AccessAttempt.objects.create(
        username=resident.email.upper(), failures_since_start=3, get_data="", post_data="", **seen
    )
    AccessLog.objects.create(username=resident.email, **seen)
    AccessLog.objects.create(username=other_resident.email, **seen)

    exported = {s["kind"] for s in user_export(user=resident)["login_attempts"]}
    assert exported == {"accessattempt", "accesslog"}

    user_erase(user=resident)

    assert not AccessAttempt.objects.filter(ip_address="203.0.113.9").exists()
    assert list(AccessLog.objects.values_list("username", flat=True)) == [other_resident.email]
