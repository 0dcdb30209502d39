"""Partner event batches stored and credited set-based (feed._store_in_bulk, claims_bulk)
against the per-event path: the same batch replayed through both gives the same answer row
by row, the same events, claims, receipts, totals and ledger. A concurrent batch storing an
id first makes the set-based path give way whole. And its statements do not grow with the
batch."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carbon.adapters.partner_events import feed
from carbon.adapters.partner_events import matching as event_matching
from carbon.adapters.partner_events.links import partner_link_create
from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus
from carbon.models import Claim, ClaimStatus, User
from carbon.services.claims import claim_submit
from carbon.services.linking import link_confirm_by_partner
from carbon.services.partners import partner_create
from carbon.services.people import consent_revoke
from tests.carbon.api_helpers import assert_award_links, credited_in_bulk, issued_g, ledger_of
from tests.carbon.event_samples import push_events, ride
from tests.carbon.factories import BehaviourFactory, UserFactory, catalogue_behaviour
from tests.carbon.test_statement_counts import all_shards  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _day(days_ago: int, hour: int, minute: int = 0):
    local = timezone.localtime(NOW) - timedelta(days=days_ago)
    return local.replace(hour=hour, minute=minute, second=0, microsecond=0)


@pytest.fixture
def platform(db, settings):
    """A platform reporting bike rides (daily cap 2000 g), walks (partner or self), recycling
    (given a monthly cap: never set-based) and stairs (self-declared only: the claim is
    refused)."""
    settings.CARBON_SELF_REVIEW_SAMPLE_BP = 0
    issued = partner_create(name="QingJu", kind="platform")
    issued.partner.behaviours.add(
        catalogue_behaviour("bike-share"),
        catalogue_behaviour("walking"),
        catalogue_behaviour("recycling", monthly_cap_g=100_000),
        BehaviourFactory(code="stairs", evidence_types=["self"], consent_scope=""),
    )
    return issued


def _linked(partner, ref: str, user=None):
    user = user or UserFactory()
    link = partner_link_create(user=user, partner=partner, external_ref=ref, consent=True).link
    link_confirm_by_partner(link=link)
    return user


def _walk(event_id, ref, when, steps=3000):
    return {
        "event_id": event_id,
        "behaviour": "walking",
        "user_ref": ref,
        "occurred_at": when.isoformat(),
        "steps": steps,
    }


def _recycle(event_id, ref, when, kg=2.5):
    return {
        "event_id": event_id,
        "behaviour": "recycling",
        "user_ref": ref,
        "occurred_at": when.isoformat(),
        "weight_kg": kg,
        "material": "glass",
    }


ROLES = (
    "plain",
    "two_accounts",
    "capped",
    "no_consent",
    "same_act",
    "monthly",
    "refused",
    "repeats",
    "closed",
    "staff",
    "pending",
)


def _world(p: str, issued) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """The people of one run (their refs prefixed `p`), the batch stored before and the batch
    under test: the same times and contents for every prefix."""
    partner = issued.partner
    people = {role: _linked(partner, f"{p}-{role}") for role in ROLES if role != "pending"}
    _linked(partner, f"{p}-two_accounts-b", user=people["two_accounts"])
    people["pending"] = UserFactory()
    partner_link_create(
        user=people["pending"], partner=partner, external_ref=f"{p}-pending", consent=True
    )
    consent_revoke(user=people["no_consent"], scope="bike_share")
    User.objects.filter(pk=people["closed"].pk).update(is_active=False)
    User.objects.filter(pk=people["staff"].pk).update(role=User.Role.ADMINISTRATOR)
    # A self-declared walk credited: the partner's record of the same walk is the same act.
    claim_submit(
        user=people["same_act"],
        behaviour_code="walking",
        quantity="1",
        idempotency_key=f"{p}-self-walk",
        occurred_at=_day(1, 8, 5),
    )

    def r(event_id, role, when, **kw):
        return ride(f"{p}-{event_id}", f"{p}-{role}", when=when, **kw)

    before = [
        r("old-same", "plain", _day(6, 9)),
        r("old-changed", "plain", _day(6, 11)),
        r("old-unlinked", "nobody", _day(6, 12)),
    ]
    batch = [
        r("old-same", "plain", _day(6, 9)),  # resent: a duplicate, claim credited
        r("old-changed", "plain", _day(6, 11), km=9.9),  # resent changed: a conflict
        r("old-unlinked", "nobody", _day(6, 12)),  # resent: a duplicate, nothing claimed
        r("ride-1", "plain", _day(1, 7)),
        r("ride-1", "two_accounts", _day(1, 7, 30)),  # the same id again, other content
        r("cap-1", "capped", _day(1, 8), km=8, seconds=1800),  # 746 g
        r("cap-2", "capped", _day(1, 10), km=8, seconds=1800),  # 746 g
        {"event_id": f"{p}-bad", "behaviour": "bike-share"},  # a row error
        r("cap-3", "capped", _day(1, 12), km=8, seconds=1800),  # cut to 508 g
        r("cap-4", "capped", _day(1, 14), km=8, seconds=1800),  # cap reached: refused
        r("cap-5", "capped", _day(2, 9), km=8, seconds=1800),  # after it, one at a time
        r("two-a", "two_accounts", _day(2, 8)),
        r("two-b", "two_accounts-b", _day(3, 8)),
        r("nc-1", "no_consent", _day(1, 9)),
        r("nc-2", "no_consent", _day(2, 9)),
        _walk(f"{p}-walk-1", f"{p}-same_act", _day(2, 9)),
        _walk(f"{p}-walk-2", f"{p}-same_act", _day(1, 8)),  # the self-declared walk again
        _walk(f"{p}-walk-3", f"{p}-same_act", _day(1, 18)),
        _recycle(f"{p}-rec-1", f"{p}-monthly", _day(1, 9)),
        r("m-ride", "monthly", _day(1, 11)),
        r("ref-0", "refused", _day(3, 9)),
        {**r("ref-1", "refused", _day(2, 9)), "behaviour": "stairs", "quantity": "3"},
        r("ref-2", "refused", _day(2, 12)),
        r("ref-1", "refused", _day(2, 10)),  # refused before, so new: claimed in its turn
        r("rep-same", "repeats", _day(1, 9)),
        r("rep-same", "repeats", _day(1, 9)),  # a duplicate of the row above
        r("rep-other", "repeats", _day(2, 9)),
        r("rep-other", "repeats", _day(2, 15), km=5),  # a conflict with the row above
        r("rep-after", "repeats", _day(3, 9)),
        r("closed", "closed", _day(1, 9)),
        r("staff", "staff", _day(1, 9)),
        r("pending", "pending", _day(1, 9)),
        r("unlinked", "nobody", _day(1, 9)),
    ]
    for days in (2, 3, 4, 5):
        batch.append(r(f"plain-{days}", "plain", _day(days, 18)))
    return before, batch, people


def _strip(value: Any, p: str) -> Any:
    """The prefix of one run taken out of ids and refs."""
    if isinstance(value, str):
        return re.sub(rf"\b{p}-", "", value)
    if isinstance(value, dict):
        return {k: _strip(v, p) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip(v, p) for v in value]
    return value


def _receipt(receipt: dict) -> dict:
    """A receipt without what differs between two runs: ids and times."""
    volatile = {"transfer_id", "expires_at", "other_claims", "other_claim"}
    return {
        **receipt,
        "steps": [
            {k: v for k, v in step.items() if k not in volatile} for step in receipt["steps"]
        ],
    }


def _snapshot(issued, people: dict[str, Any], p: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    events = PartnerEvent.objects.filter(partner=issued.partner, event_id__startswith=f"{p}-")
    role_of = {user.pk: role for role, user in people.items()}
    # The payload hash covers the event id, so it differs by prefix: not compared.
    out["events"] = sorted(
        (
            _strip(e.event_id, p),
            e.status,
            e.behaviour_id,
            e.quantity,
            e.occurred_at,
            e.details,
            role_of[e.claim.user_id] if e.claim else None,
        )
        for e in events.select_related("claim")
    )
    for role, user in sorted(people.items()):
        claims = Claim.objects.filter(user=user, evidence_type="partner").order_by("occurred_at")
        out[role] = {
            "claims": [
                {
                    "status": c.status,
                    "quantity": c.quantity,
                    "credited_g": c.credited_g,
                    "factor": c.factor_id,
                    "partner": c.partner_id,
                    "behaviour": c.behaviour_id,
                    "occurred_at": c.occurred_at,
                    "has_award": c.award_id is not None,
                    "decided": c.decided_at is not None,
                    "held_until": c.held_until,
                    "event": _strip(c.partner_event.event_id, p),
                    "receipt": _strip(_receipt(c.receipt), p),
                }
                for c in claims.select_related("partner_event")
            ],
            "ledger": ledger_of(user),
        }
        # The links each claim keeps: its event, its key, its award and the award's lot.
        for c in claims.select_related("partner_event", "award"):
            assert c.evidence == {"event": c.partner_event.pk}
            assert c.idempotency_key == f"partner-event:{c.partner_event.pk}"
            assert c.partner_event.status == PartnerEventStatus.CLAIMED
            if c.status == ClaimStatus.CREDITED:
                assert_award_links(c)
    return out


def _push(issued, events, timestamp) -> dict:
    response = push_events(issued, events, timestamp=timestamp)
    assert response.status_code == 200, response.content
    return response.json()


def _run(issued, p: str, *, in_bulk: bool, settings) -> tuple[dict, dict, dict, int]:
    """The world of prefix `p`: the earlier batch, the batch, then the batch again (a retry,
    signed anew). Returns the two answers, the snapshot and the grams issued."""
    settings.CARBON_FEED_BULK_CREDIT = in_bulk
    before, batch, people = _world(p, issued)
    issued_before = issued_g()
    sent = int(timezone.now().timestamp()) - 30
    _push(issued, before, sent)
    answer = _push(issued, batch, sent + 1)
    issued_by_batch = issued_g() - issued_before
    retry = _push(issued, batch, sent + 2)
    assert issued_g() - issued_before == issued_by_batch  # the retry credits nothing
    return (
        _strip(answer, p),
        _strip(retry, p),
        _snapshot(issued, people, p),
        issued_by_batch,
    )


def test_a_batch_stored_in_bulk_equals_the_per_event_path(
    platform, settings, monkeypatch, ledger_is_consistent
):
    bulk_credited = credited_in_bulk(monkeypatch, event_matching)

    one_by_one = _run(platform, "a", in_bulk=False, settings=settings)
    assert bulk_credited == []
    bulk = _run(platform, "b", in_bulk=True, settings=settings)

    answer, retry, snapshot, issued = bulk
    assert answer == one_by_one[0]
    assert retry == one_by_one[1]
    assert snapshot == one_by_one[2]
    assert issued == one_by_one[3] > 0
    # The set-based path credited the usual events: the earlier batch's two, plain's five,
    # capped's first three (the third cut by the daily cap), the first of the repeated ids,
    # the walk before the one the resident declared, the ride before the refused stairs.
    # The rest one at a time: once a resident has an event left (refused, capped, without
    # consent, a monthly cap, the same act, a repeated id), it and their later events are
    # decided one at a time; their earlier ones are not taken back.
    assert sorted(_strip(c.partner_event.event_id, "b") for c in bulk_credited) == [
        "cap-1",
        "cap-2",
        "cap-3",
        "old-changed",
        "old-same",
        "plain-2",
        "plain-3",
        "plain-4",
        "plain-5",
        "ref-0",
        "rep-same",
        "ride-1",
        "walk-1",
    ]

    # The cases happened as meant, in both runs.
    answers = [
        (row["event_id"], row["status"], row.get("claim_status") or row.get("code"))
        for row in answer["rows"]
    ]
    assert answers[:11] == [
        ("old-same", "duplicate", "credited"),
        ("old-changed", "error", "record_conflict"),
        ("old-unlinked", "duplicate", None),
        ("ride-1", "accepted", "credited"),
        ("ride-1", "error", "record_conflict"),
        ("cap-1", "accepted", "credited"),
        ("cap-2", "accepted", "credited"),
        ("bad", "error", "malformed_row"),
        ("cap-3", "accepted", "credited"),
        ("cap-4", "accepted", "rejected"),
        ("cap-5", "accepted", "credited"),
    ]
    statuses = {event_id: outcome for event_id, _status, outcome in answers[11:]}
    assert [outcome for event_id, _status, outcome in answers if event_id == "ref-1"] == [
        "evidence_not_accepted",
        "credited",  # refused, so not stored: the resend is a new event
    ]
    assert [outcome for event_id, _status, outcome in answers if event_id == "rep-same"] == [
        "credited",
        "credited",  # the duplicate names its claim's status
    ]
    assert [outcome for event_id, _status, outcome in answers if event_id == "rep-other"] == [
        "credited",
        "record_conflict",
    ]
    assert statuses["nc-1"] == statuses["nc-2"] == "rejected"
    assert statuses["rec-1"] == statuses["m-ride"] == "credited"
    for waiting in ("closed", "staff", "pending", "unlinked"):
        assert statuses[waiting] == "awaiting_link"
    by_time = snapshot["capped"]["claims"]  # cap-5 is the day before cap-1
    assert [c["credited_g"] for c in by_time] == [746, 746, 746, 508, 0]
    assert by_time[-1]["receipt"]["code"] == "cap_reached"
    walks = {c["event"]: c["receipt"] for c in snapshot["same_act"]["claims"]}
    # The declared walk's grams deducted from the partner's record of it (one act earns once).
    assert "exclusive_evidence" in [step["step"] for step in walks["walk-2"]["steps"]]
    assert "exclusive_evidence" not in [step["step"] for step in walks["walk-1"]["steps"]]
    # The retry: every event it carries is stored already, credited once.
    assert {row["status"] for row in retry["rows"]} == {"duplicate", "error"}
    assert sum(row["status"] == "accepted" for row in retry["rows"]) == 0
    ledger_is_consistent()


def test_an_event_left_to_the_per_event_path_leaves_the_resident_s_earlier_ones_in_bulk(
    platform, settings, monkeypatch, ledger_is_consistent
):
    """A resident's recycling event, after two usual rides, is left to the per-event path
    before any rule (recycling has a monthly cap: no month's sum is read for the batch). The
    rides before it are still credited in bulk, as the per-event path credits them; the ride
    after it goes one at a time, after the recycling."""
    bulk_credited = credited_in_bulk(monkeypatch, event_matching)

    def run(p: str, *, in_bulk: bool) -> tuple[dict, dict, int]:
        settings.CARBON_FEED_BULK_CREDIT = in_bulk
        people = {role: _linked(platform.partner, f"{p}-{role}") for role in ("resident", "other")}
        batch = [
            ride(f"{p}-r1", f"{p}-resident", when=_day(3, 9)),
            ride(f"{p}-o1", f"{p}-other", when=_day(3, 9)),
            ride(f"{p}-r2", f"{p}-resident", when=_day(2, 9)),
            _recycle(f"{p}-rec", f"{p}-resident", _day(2, 12)),
            ride(f"{p}-r3", f"{p}-resident", when=_day(1, 9)),
        ]
        issued_before = issued_g()
        answer = _push(platform, batch, None)
        return _strip(answer, p), _snapshot(platform, people, p), issued_g() - issued_before

    one_by_one = run("a", in_bulk=False)
    assert bulk_credited == []
    bulk = run("b", in_bulk=True)

    assert bulk == one_by_one
    answer, snapshot, issued = bulk
    assert [(row["event_id"], row.get("claim_status")) for row in answer["rows"]] == [
        ("r1", "credited"),
        ("o1", "credited"),
        ("r2", "credited"),
        ("rec", "credited"),
        ("r3", "credited"),
    ]
    assert issued > 0
    assert sorted(_strip(c.partner_event.event_id, "b") for c in bulk_credited) == [
        "o1",
        "r1",
        "r2",
    ]
    ledger_is_consistent()


def test_a_concurrent_batch_storing_an_id_first_makes_the_bulk_path_give_way(
    platform, settings, monkeypatch, ledger_is_consistent
):
    """What a batch racing this one does on PostgreSQL (see the concurrency test), played
    here by storing one of the ids between the batch's reads and its writes: nothing of the
    set-based path is kept, each row is answered one at a time."""
    partner = platform.partner
    users = [_linked(partner, f"u-{i}") for i in range(3)]
    events = [ride(f"e{i}", f"u-{i}", when=_day(1, 9 + i)) for i in range(3)]
    real = feed.external_ref_hash
    raced = []

    def racing(*, partner, external_ref):
        if not raced:  # after the read of stored ids, before the batch's insert
            raced.append(
                PartnerEvent.objects.create(
                    partner=partner,
                    event_id="e1",
                    payload_hash="0" * 64,
                    behaviour=platform.partner.behaviours.get(code="bike-share"),
                    external_ref_hash=real(partner=partner, external_ref="someone"),
                    occurred_at=_day(1, 10),
                    quantity=1,
                    status=PartnerEventStatus.UNMATCHED,
                )
            )
        return real(partner=partner, external_ref=external_ref)

    settings.CARBON_FEED_BULK_CREDIT = True
    monkeypatch.setattr(feed, "external_ref_hash", racing)
    answer = _push(platform, events, None)
    assert raced
    assert [(r["status"], r.get("claim_status"), r.get("code")) for r in answer["rows"]] == [
        ("accepted", "credited", None),
        ("error", None, "record_conflict"),
        ("accepted", "credited", None),
    ]
    assert PartnerEvent.objects.count() == 3
    assert [Claim.objects.filter(user=u).count() for u in users] == [1, 0, 1]
    ledger_is_consistent()


def _usual_batch(partner, n: int, prefix: str) -> list[dict]:
    events = []
    for i in range(n):
        _linked(partner, f"{prefix}-{i}")
        events.append(ride(f"{prefix}-e{i}", f"{prefix}-{i}", when=_day(1, 9)))
    return events


@pytest.mark.usefixtures("all_shards")
def test_the_bulk_path_stores_a_batch_in_statements_that_do_not_grow_with_it(
    platform, settings, ledger_is_consistent
):
    """Every issuance shard exists first (all_shards): a shard's first award creates it,
    whichever batch happens to draw it."""

    def statements(events) -> int:
        with CaptureQueriesContext(connection) as queries:
            body = _push(platform, events, None)
        assert body["accepted"] == len(events)
        assert {r["claim_status"] for r in body["rows"]} == {"credited"}
        return len(queries)

    settings.CARBON_FEED_BULK_CREDIT = False
    one_by_one = statements(_usual_batch(platform.partner, 12, "a"))
    settings.CARBON_FEED_BULK_CREDIT = True
    small = statements(_usual_batch(platform.partner, 3, "b"))
    large = statements(_usual_batch(platform.partner, 12, "c"))
    print(f"statements for 12 events: per event {one_by_one}, bulk {large}; 3 events bulk {small}")
    assert large == small, (small, large)
    assert large * 4 < one_by_one, (large, one_by_one)
    assert Claim.objects.filter(status=ClaimStatus.CREDITED).count() == 27
    ledger_is_consistent()
